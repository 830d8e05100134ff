// A real OpenID Provider for the tests (npm oidc-provider@9 on the machine's Node.js).
// node idp.mjs, with PORT and REDIRECT_URI; issuer http://127.0.0.1:$PORT.
// Clients: "recordings" (confidential, code + PKCE) and "recordings-short" (ID tokens
// that expire after 1 s). devInteractions accept any login name and password; the name
// decides the groups claim: "sup-…" supervisors, "cmp-…" compliance, "agt-…" agents (and
// what follows "agt-" is their agent_id claim, none when nothing follows), else none.
import Provider from 'oidc-provider';
import { generateKeyPair, exportJWK } from 'jose';

const PORT = Number(process.env.PORT);
const ISSUER = `http://127.0.0.1:${PORT}`;
const REDIRECT = process.env.REDIRECT_URI;
const { privateKey } = await generateKeyPair('RS256', { extractable: true });
const jwk = { ...(await exportJWK(privateKey)), kid: 'test-rs256', alg: 'RS256', use: 'sig' };
const client = (id) => ({
  client_id: id, client_secret: `${id}-secret`, token_endpoint_auth_method: 'client_secret_basic',
  redirect_uris: [REDIRECT], grant_types: ['authorization_code'], response_types: ['code'],
});
const groupsOf = (id) => id.startsWith('sup-') ? ['callcentre-supervisors']
  : id.startsWith('cmp-') ? ['callcentre-compliance', 'staff']
  : id.startsWith('agt-') ? ['callcentre-agents'] : ['staff'];
const agentOf = (id) => (id.startsWith('agt-') && id.length > 4 ? { agent_id: id.slice(4) } : {});

const provider = new Provider(ISSUER, {
  jwks: { keys: [jwk] },
  cookies: { keys: ['test-cookie-key-1'] },
  clients: [client('recordings'), client('recordings-short')],
  scopes: ['openid', 'email', 'groups'],
  claims: { openid: ['sub'], email: ['email', 'email_verified'], groups: ['groups', 'agent_id'] },
  conformIdTokenClaims: false,  // the granted claims go into the ID token itself
  ttl: { IdToken: (ctx, token, c) => (c.clientId === 'recordings-short' ? 1 : 3600) },
  async findAccount(ctx, id) {
    return { accountId: id, async claims() {
      return { sub: id, email: `${id}@example.test`, email_verified: true, groups: groupsOf(id),
               ...agentOf(id) };
    } };
  },
  features: { devInteractions: { enabled: true } },
  pkce: { required: () => true },
  loadExistingGrant: async (ctx) => {
    const grantId = ctx.oidc.result?.consent?.grantId || ctx.oidc.session.grantIdFor(ctx.oidc.client.clientId);
    if (grantId) return ctx.oidc.provider.Grant.find(grantId);
    if (!ctx.oidc.session.accountId) return undefined;
    const grant = new ctx.oidc.provider.Grant({ clientId: ctx.oidc.client.clientId, accountId: ctx.oidc.session.accountId });
    grant.addOIDCScope('openid email groups');
    grant.addOIDCClaims(['email', 'email_verified', 'groups', 'agent_id']);
    await grant.save();
    return grant;
  },
});
provider.listen(PORT, '127.0.0.1', () => console.log(`listening ${ISSUER}`));
