// A real OpenID Connect provider for the tests (panva's certified `oidc-provider`), standing in
// for the municipality's provider (staff) and for ClaveÚnica (residents).
//
// Listens on a random loopback port and prints one line of JSON, {"issuer": "http://127.0.0.1:N"},
// once it is ready. Exits when its standard input closes (the test that started it ended).
//
// Its sign-in page accepts any login and password (oidc-provider's development interactions):
// - a login shaped like a RUN ("12345678-5") is a resident: claims `RolUnico`
//   ({"numero", "DV", "tipo": "RUN"}) and `name` ({"nombres", "apellidos"}), as ClaveÚnica sends;
// - any other login is a municipal account: `preferred_username` is the login.
// Clients: `ventanilla-staff` / `staff-secret` and `ventanilla-vecinos` / `vecinos-secret`,
// native (loopback redirect URIs on any port, RFC 8252), with PKCE.
import http from 'node:http';
import Provider from 'oidc-provider';

// Standard output carries only the ready line: a test reads it and may close the pipe, so
// anything logged later goes to standard error, and a closed pipe is not an error.
console.log = (...args) => console.error(...args);
process.stdout.on("error", () => {});

const RUN = /^(\d{7,8})-([\dkK])$/;

function claimsFor(id) {
  const run = RUN.exec(id);
  if (run) {
    return {
      sub: `cu-${id}`,
      RolUnico: { numero: Number(run[1]), DV: run[2].toUpperCase(), tipo: 'RUN' },
      name: { nombres: ['María', 'José'], apellidos: ['Pérez', 'Soto'] },
    };
  }
  return { sub: `muni-${id}`, preferred_username: id, email: `${id}@muni.example` };
}

const server = http.createServer();
await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
const issuer = `http://127.0.0.1:${server.address().port}`;

const client = (id, secret, path, logout) => ({
  client_id: id,
  client_secret: secret,
  application_type: 'native',
  redirect_uris: [`http://127.0.0.1${path}`],
  post_logout_redirect_uris: logout ? [`http://127.0.0.1${logout}`] : [],
  grant_types: ['authorization_code'],
  response_types: ['code'],
  token_endpoint_auth_method: 'client_secret_basic',
});

const provider = new Provider(issuer, {
  clients: [
    client('ventanilla-staff', 'staff-secret', '/staff/login/oidc/callback'),
    client('ventanilla-vecinos', 'vecinos-secret', '/mi-cuenta/callback', '/mi-cuenta'),
  ],
  scopes: ['openid', 'profile', 'email', 'run', 'name'],
  claims: {
    openid: ['sub'],
    profile: ['preferred_username'],
    email: ['email'],
    run: ['RolUnico'],
    name: ['name'],
  },
  cookies: { keys: ['ventanilla-test-provider'] },
  features: {
    devInteractions: { enabled: true },
    rpInitiatedLogout: { enabled: true },
  },
  async findAccount(ctx, id) {
    return { accountId: id, claims: async () => claimsFor(id) };
  },
  // First-party clients: no consent screen, every requested scope granted.
  async loadExistingGrant(ctx) {
    const grantId = ctx.oidc.result?.consent?.grantId
      || ctx.oidc.session.grantIdFor(ctx.oidc.client.clientId);
    if (grantId) {
      return ctx.oidc.provider.Grant.find(grantId);
    }
    const grant = new ctx.oidc.provider.Grant({
      clientId: ctx.oidc.client.clientId,
      accountId: ctx.oidc.session.accountId,
    });
    grant.addOIDCScope('openid profile email run name');
    await grant.save();
    return grant;
  },
});
server.on('request', provider.callback());

process.stdout.write(`${JSON.stringify({ issuer })}\n`);
process.stdin.on('end', () => process.exit(0));
process.stdin.on('close', () => process.exit(0));
process.stdin.resume();
