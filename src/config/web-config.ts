// The web config file: TLS and basic authentication for podmesh's HTTP servers (the agent's
// /metrics and /api/v1/results, the controller's UI and API), named by the setting
// web.configFile. Its format is Prometheus exporter-toolkit's (`--web.config.file` of
// node_exporter and the other exporters), so a file written for an exporter, and the Prometheus
// scrape config that goes with it, work here unchanged; docs/security.md says why this design.
//
// Only the keys podmesh implements are accepted. Any other exporter-toolkit key (cipher_suites,
// http_server_config, ...) is refused by name: a security setting silently ignored is worse
// than a start-up error that says what to remove.

import { readFileSync } from 'node:fs';
import { dirname, isAbsolute, join } from 'node:path';
import { parse as parseYaml } from 'yaml';
import { z } from 'zod';

/**
 * exporter-toolkit's client_auth_type values that verify a certificate. RequestClientCert and
 * RequireAnyClientCert (a certificate asked for but not verified) authenticate nobody and are
 * refused.
 */
export const CLIENT_AUTH_TYPES = [
  'NoClientCert',
  'VerifyClientCertIfGiven',
  'RequireAndVerifyClientCert',
] as const;
export type ClientAuthType = (typeof CLIENT_AUTH_TYPES)[number];

/** A bcrypt hash as htpasswd -B, Go's x/crypto/bcrypt and bcryptjs write it. */
const BCRYPT_HASH = /^\$2[aby]\$(0[4-9]|[12]\d|3[01])\$[./A-Za-z0-9]{53}$/;

const file = z.string().min(1);

export const webConfigFileSchema = z
  .strictObject({
    tls_server_config: z
      .strictObject({
        cert_file: file,
        key_file: file,
        client_ca_file: file.optional(),
        client_auth_type: z.enum(CLIENT_AUTH_TYPES).default('NoClientCert'),
        min_version: z.enum(['TLS12', 'TLS13']).default('TLS12'),
      })
      .refine((t) => (t.client_ca_file !== undefined) === (t.client_auth_type !== 'NoClientCert'), {
        message:
          'client_ca_file and a client_auth_type other than NoClientCert go together: set both (client certificates verified against that CA) or neither',
      })
      .optional(),
    basic_auth_users: z
      .record(
        z.string(),
        z.string().regex(BCRYPT_HASH, {
          message:
            'must be a bcrypt hash such as `htpasswd -nBC 10 "" | tr -d ":\\n"` prints ($2y$10$ and 53 more characters), never a password',
        }),
      )
      .superRefine((users, ctx) => {
        for (const name of Object.keys(users))
          if (name === '' || name.includes(':'))
            ctx.addIssue({
              code: 'custom',
              path: [name],
              message: 'a user name must be non-empty and cannot contain ":" (basic auth)',
            });
      })
      .nullish(),
  })
  .nullish();

/** What the file says, paths resolved against the file's own directory as exporter-toolkit does. */
export interface WebConfig {
  readonly tls:
    | {
        readonly certFile: string;
        readonly keyFile: string;
        readonly clientCaFile: string | undefined;
        readonly clientAuth: ClientAuthType;
        readonly minVersion: 'TLSv1.2' | 'TLSv1.3';
      }
    | undefined;
  /** User name to bcrypt hash; empty: no authentication. */
  readonly basicAuthUsers: Readonly<Record<string, string>>;
}

/** Parses the file's text; `path` names it in problems and anchors relative paths. */
export function parseWebConfig(
  text: string,
  path: string,
): { config: WebConfig; problems: [] } | { config: undefined; problems: string[] } {
  let doc: unknown;
  try {
    doc = parseYaml(text, { strict: true, uniqueKeys: true });
  } catch (e) {
    return {
      config: undefined,
      problems: [`web config ${path}: not valid YAML: ${(e as Error).message.split('\n')[0]}`],
    };
  }
  const parsed = webConfigFileSchema.safeParse(doc);
  if (!parsed.success)
    return {
      config: undefined,
      problems: parsed.error.issues.map(
        (i) =>
          `web config ${path}${i.path.length > 0 ? ` at ${i.path.join('.')}` : ''}: ${i.message}`,
      ),
    };
  const dir = dirname(path);
  const at = (p: string): string => (isAbsolute(p) ? p : join(dir, p));
  const t = parsed.data?.tls_server_config ?? undefined;
  return {
    config: {
      tls:
        t === undefined
          ? undefined
          : {
              certFile: at(t.cert_file),
              keyFile: at(t.key_file),
              clientCaFile: t.client_ca_file === undefined ? undefined : at(t.client_ca_file),
              clientAuth: t.client_auth_type,
              minVersion: t.min_version === 'TLS13' ? 'TLSv1.3' : 'TLSv1.2',
            },
      basicAuthUsers: { ...(parsed.data?.basic_auth_users ?? {}) },
    },
    problems: [],
  };
}

/** Reads and parses the file; a file that can't be read is a problem like any other. */
export function loadWebConfig(
  path: string,
): { config: WebConfig; problems: [] } | { config: undefined; problems: string[] } {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (e) {
    return {
      config: undefined,
      problems: [`web config ${path}: cannot read it (${(e as Error).message})`],
    };
  }
  return parseWebConfig(text, path);
}
