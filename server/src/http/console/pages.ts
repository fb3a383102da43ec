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

/** What the browser's client certificate makes of a sign-in: the admin it signs in as, or why it was refused. */
export type CertificateSignIn = { actor: string } | { refused: string } | undefined;

export function signInPage(options: { bearer: boolean; certificate?: CertificateSignIn; message?: string | undefined }): string {
  const { certificate, message } = options;
  const byCertificate = certificate === undefined
    ? '<p class="hint">With an admin client certificate in your browser, opening the console signs you in by it.</p>'
    : 'actor' in certificate
      ? `<p id="certificate-sign-in"><a href="/console/">Continue as ${escapeHtml(certificate.actor)}</a> (your admin certificate)</p>`
      : `<p class="error" role="alert" id="certificate-refused">Your client certificate was refused: ${escapeHtml(certificate.refused)}</p>`;
  const byToken = options.bearer
    ? `<form method="post" action="/console/sign-in">
<label for="token">Admin token</label>
<input id="token" name="token" type="password" autocomplete="current-password" required autofocus>
${message ? `<p class="error" role="alert">${escapeHtml(message)}</p>` : ''}
<button type="submit">Sign in</button>
</form>
<p class="hint">The first admin token is in <code>ENROLLD_HOME/admin-token</code>. It is sent once; the console keeps a session cookie, never the token.</p>`
    : `${message ? `<p class="error" role="alert">${escapeHtml(message)}</p>` : ''}<p class="hint">Admin tokens are turned off on this server (ADMIN_BEARER=off): sign in with an admin certificate.</p>`;
  return layout(
    'Sign in',
    `<main class="signin">
<h1>enrolld console</h1>
${byCertificate}
${byToken}
</main>`,
  );
}

export function shellPage(): string {
  return layout('Console', '<div id="app"><p class="loading">Loading…</p></div>', ['/console/assets/console.js']);
}
