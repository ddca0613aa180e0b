/**
 * `junction token create NAME --role ROLE`: a new admin API token (32 random bytes, hex) and the
 * line to add under `admin.tokens`, which holds only its SHA-256. The token is printed once and
 * stored nowhere; lose it and make another. Line 2 of the output is the token alone, for scripts.
 */
import { hashToken, newToken, type Role } from './auth.js';

export function tokenCreateText(name: string, role: Role, token = newToken()): string {
  return [
    `# admin API token "${name}" (role ${role}); it is shown only now, keep it secret:`,
    token,
    '# add this line under admin.tokens in the config file (it holds the SHA-256 only):',
    `  - { name: ${name}, sha256: "${hashToken(token)}", role: ${role} }`,
    `# use it as: curl -H "Authorization: Bearer ${token.slice(0, 8)}..." http://127.0.0.1:8083/api/v1/overview`,
    '',
  ].join('\n');
}
