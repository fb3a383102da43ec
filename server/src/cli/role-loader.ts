// Loads the role commands only when one is asked for. The admin commands (token, devices, revoke) run from the
// compiled CLI (server/dist/cli.js, built by `npm ci`'s prepare) and start in well under half a second; the role
// commands load the server's TypeScript sources through tsx, which costs a second or two once per server start.
type RoleCommands = typeof import('./role-commands.js');

export async function loadRoleCommands(): Promise<RoleCommands> {
  const compiled = !import.meta.url.endsWith('.ts');
  if (compiled) {
    const { register } = await import('tsx/esm/api');
    register();
  }
  // A computed specifier keeps the bundler from pulling the server into the compiled CLI.
  const source = compiled ? new URL('../src/cli/role-commands.ts', import.meta.url) : new URL('./role-commands.ts', import.meta.url);
  return (await import(source.href)) as RoleCommands;
}
