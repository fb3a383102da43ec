// Loaded before every test file. Keeps logs quiet unless asked for.
process.env.LOG_LEVEL ??= 'silent';
