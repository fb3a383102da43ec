// The console's two HTML documents, rendered on the server: the sign-in form (works without script) and the shell that
// loads the app. No inline script or style anywhere: the CSP allows only files from 'self'. Every interpolated string
// goes through escapeHtml.

const ENTITIES: Record<string, string> = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' };

export function escapeHtml(value: string): string {
  return value.replace(/[&<>"']/g, (c) => ENTITIES[c]!);
}

/** What /console answers with: only same-origin files, nothing inline, no framing, forms post only here. */
export const CONSOLE_CSP = [
  "default-src 'none'",
  "script-src 'self'",
  "style-src 'self'",
  "img-src 'self' data:",
  "connect-src 'self'",
  "font-src 'self'",
  "form-action 'self'",
  "frame-ancestors 'none'",
  "base-uri 'none'",
].join('; ');

function layout(title: string, body: string, scripts: string[] = []): string {
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${escapeHtml(title)} · enrolld</title>
<link rel="icon" href="data:,">
<link rel="stylesheet" href="/console/assets/vendor/uPlot.min.css">
<link rel="stylesheet" href="/console/assets/console.css">
${scripts.map((src) => `<script type="module" src="${escapeHtml(src)}"></script>`).join('\n')}
</head>
<body>
${body}
</body>
</html>
`;
}

export function signInPage(message?: string): string {
  return layout(
    'Sign in',
    `<main class="signin">
<h1>enrolld console</h1>
<form method="post" action="/console/sign-in">
<label for="token">Admin token</label>
<input id="token" name="token" type="password" autocomplete="current-password" required autofocus>
${message ? `<p class="error" role="alert">${escapeHtml(message)}</p>` : ''}
<button type="submit">Sign in</button>
</form>
<p class="hint">The first admin token is in <code>ENROLLD_HOME/admin-token</code>. It is sent once; the console keeps a session cookie, never the token.</p>
</main>`,
  );
}

export function shellPage(): string {
  return layout('Console', '<div id="app"><p class="loading">Loading…</p></div>', ['/console/assets/console.js']);
}
