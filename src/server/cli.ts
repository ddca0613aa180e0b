// Command line parsing: argv -> CliCommand. Pure: no I/O, no process.exit; main.ts acts on the result.
//
// Two tables say everything the CLI accepts, and the help text is generated from them:
// - CONFIG_FLAGS: flags that override config keys (`--mqtt-port` -> mqtt.port). A later listener
//   flag (`--stomp-port`, `--http-port`) is one row; `--host` lists every listener's host key.
// - COMMANDS: subcommands with their own flags and a `build` that turns parsed values into a
//   CliCommand. A later subcommand (`passwd`, `certs`, `data export`, `token create`) is one entry plus
//   one member of the CliCommand union.
// Values are not checked here beyond what parseArgs does: overrides carry the flag's text and the
// config validator converts and checks it, so `--mqtt-port abc` fails there, naming `--mqtt-port`.

import { parseArgs } from 'node:util';
import { closestMatch, type ConfigKey, type ConfigOverride, type ConfigOverrides } from './config.js';

export type CliCommand =
  | { readonly kind: 'help'; readonly text: string }
  | { readonly kind: 'version' }
  | { readonly kind: 'start'; readonly configFile?: string; readonly overrides: ConfigOverrides }
  | { readonly kind: 'data-export'; readonly dataDir: string; readonly out?: string }
  | { readonly kind: 'data-import'; readonly dataDir: string; readonly engine: 'rocksdb' | 'leveldb'; readonly file: string }
  | { readonly kind: 'certs'; readonly dir: string; readonly clientCn?: string; readonly days?: number }
  | { readonly kind: 'passwd'; readonly file: string; readonly user: string; readonly remove: boolean; readonly passwordStdin: boolean }
  | { readonly kind: 'token-create'; readonly name: string; readonly role: 'admin' | 'publisher' | 'viewer' }
  | { readonly kind: 'error'; readonly message: string };

interface ConfigFlag {
  /** Long name without the dashes. */
  readonly name: string;
  /** Placeholder shown in the help: `--mqtt-port N`. */
  readonly arg: string;
  /** Every key the flag sets, e.g. `--host` sets the host of every listener. */
  readonly keys: readonly ConfigKey[];
  readonly help: string;
}

export const CONFIG_FLAGS: readonly ConfigFlag[] = [
  { name: 'mqtt-port', arg: 'N', keys: ['mqtt.port'], help: 'MQTT TCP port (0 = any free port)' },
  { name: 'stomp-port', arg: 'N', keys: ['stomp.port'], help: 'STOMP TCP port (0 = any free port)' },
  { name: 'http-port', arg: 'N', keys: ['http.port'], help: 'HTTP port of the WebSocket endpoints /mqtt and /stomp (0 = any free port)' },
  { name: 'host', arg: 'ADDR', keys: ['mqtt.host', 'stomp.host', 'http.host'], help: 'address every listener binds to' },
  { name: 'tls-cert', arg: 'FILE', keys: ['tls.cert'], help: 'server certificate (PEM): opens MQTT over TLS (8883) and STOMP over TLS (61614)' },
  { name: 'tls-key', arg: 'FILE', keys: ['tls.key'], help: 'private key of --tls-cert (PEM)' },
  { name: 'storage', arg: 'ENGINE', keys: ['storage.engine'], help: 'storage engine: auto | rocksdb | leveldb | memory' },
  { name: 'data-dir', arg: 'DIR', keys: ['storage.dir'], help: 'data directory, relative to the working directory' },
  { name: 'log-level', arg: 'LEVEL', keys: ['log.level'], help: 'debug | info | warn | error | silent' },
];

type OptionSpec = { readonly type: 'string' | 'boolean'; readonly short?: string };
type Values = { readonly [name: string]: string | boolean | (string | boolean)[] | undefined };

interface CommandSpec {
  readonly name: string;
  readonly summary: string;
  /** Options parsed after the command name; `help` (-h) is added to every command. */
  readonly options: { readonly [name: string]: OptionSpec };
  /** Help lines for the options: [`-c, --config FILE`, `what it does`]. */
  readonly optionHelp: readonly (readonly [string, string])[];
  /** Positional arguments after the options, e.g. `FILE`; none when absent. */
  readonly positionals?: string;
  readonly build: (values: Values, positionals: readonly string[]) => CliCommand;
}

function overridesFrom(values: Values): ConfigOverride[] {
  const out: ConfigOverride[] = [];
  for (const flag of CONFIG_FLAGS) {
    const value = values[flag.name];
    if (typeof value !== 'string') continue;
    for (const key of flag.keys) out.push({ key, value, source: `--${flag.name}` });
  }
  return out;
}

const COMMANDS: readonly CommandSpec[] = [
  {
    name: 'start',
    summary: 'run the broker',
    options: {
      config: { type: 'string', short: 'c' },
      ...Object.fromEntries(CONFIG_FLAGS.map((f) => [f.name, { type: 'string' } as const])),
    },
    optionHelp: [
      ['-c, --config FILE', 'YAML config file (without it: all defaults)'],
      ...CONFIG_FLAGS.map((f) => [`--${f.name} ${f.arg}`, `${f.help} [${f.keys.join(', ')}]`] as const),
    ],
    build(values) {
      const config = values['config'];
      if (config === '') return error('--config needs a file name');
      const overrides = overridesFrom(values);
      return typeof config === 'string' ? { kind: 'start', configFile: config, overrides } : { kind: 'start', overrides };
    },
  },
  {
    name: 'data export',
    summary: 'write everything durable in a data directory to one portable file (broker running or not)',
    options: { 'data-dir': { type: 'string' }, out: { type: 'string', short: 'o' } },
    optionHelp: [
      ['--data-dir DIR', 'data directory to export (required)'],
      ['-o, --out FILE', 'file to write (default: standard output)'],
    ],
    build(values) {
      const dataDir = values['data-dir'];
      if (typeof dataDir !== 'string' || dataDir === '') return error('data export needs --data-dir DIR');
      const out = values['out'];
      return typeof out === 'string' ? { kind: 'data-export', dataDir, out } : { kind: 'data-export', dataDir };
    },
  },
  {
    name: 'data import',
    summary: 'build a new data directory from an export file, with the engine given',
    options: { 'data-dir': { type: 'string' }, engine: { type: 'string' } },
    optionHelp: [
      ['--data-dir DIR', 'data directory to create; must not exist or be empty (required)'],
      ['--engine ENGINE', 'rocksdb | leveldb (required)'],
    ],
    positionals: 'FILE',
    build(values, positionals) {
      const dataDir = values['data-dir'];
      const engine = values['engine'];
      if (typeof dataDir !== 'string' || dataDir === '') return error('data import needs --data-dir DIR');
      if (engine !== 'rocksdb' && engine !== 'leveldb') return error('data import needs --engine rocksdb or --engine leveldb');
      if (positionals.length !== 1) return error('data import needs exactly one FILE');
      return { kind: 'data-import', dataDir, engine, file: positionals[0]! };
    },
  },
  {
    name: 'passwd',
    summary: 'add or change a user in a password file (prompts; mosquitto_passwd format), or remove one with -D',
    options: { 'password-stdin': { type: 'boolean' }, delete: { type: 'boolean', short: 'D' } },
    optionHelp: [
      ['--password-stdin', 'read the password from standard input instead of prompting'],
      ['-D, --delete', 'remove the user'],
    ],
    positionals: 'FILE USER',
    build(values, positionals) {
      if (positionals.length !== 2) return error('passwd needs FILE and USER');
      const [file, user] = positionals as [string, string];
      if (user === '' || user.includes(':')) return error('USER must be non-empty and hold no colon');
      const remove = values['delete'] === true;
      const passwordStdin = values['password-stdin'] === true;
      if (remove && passwordStdin) return error('--delete takes no password');
      return { kind: 'passwd', file, user, remove, passwordStdin };
    },
  },
  {
    name: 'token create',
    summary: 'make an admin API token: prints the token (shown once) and the admin.tokens line with its SHA-256',
    options: { role: { type: 'string' } },
    optionHelp: [['--role ROLE', 'viewer | publisher | admin (required); each includes the rights of those before it']],
    positionals: 'NAME',
    build(values, positionals) {
      if (positionals.length !== 1) return error('token create needs exactly one NAME');
      const name = positionals[0]!;
      if (!/^[A-Za-z0-9._-]{1,64}$/.test(name)) return error('NAME must be 1-64 letters, digits, . _ or -');
      const role = values['role'];
      if (role !== 'admin' && role !== 'publisher' && role !== 'viewer') return error('token create needs --role viewer, publisher or admin');
      return { kind: 'token-create', name, role };
    },
  },
  {
    name: 'certs',
    summary: 'make a development CA, a server certificate for localhost and a client certificate (openssl)',
    options: { dir: { type: 'string' }, 'client-cn': { type: 'string' }, days: { type: 'string' } },
    optionHelp: [
      ['--dir DIR', 'where to write ca.pem, server.pem/.key, client.pem/.key (default: certs/dev)'],
      ['--client-cn NAME', 'CN of the client certificate (default: dev-client)'],
      ['--days N', 'validity of the server and client certificates (default: 825)'],
    ],
    build(values) {
      const dir = values['dir'];
      const cn = values['client-cn'];
      const days = values['days'];
      if (dir === '') return error('--dir needs a directory');
      if (cn === '') return error('--client-cn needs a name');
      if (days !== undefined && (typeof days !== 'string' || !/^[1-9]\d{0,4}$/.test(days))) return error('--days needs a whole number of days, 1 or more');
      return {
        kind: 'certs',
        dir: typeof dir === 'string' ? dir : 'certs/dev',
        ...(typeof cn === 'string' ? { clientCn: cn } : {}),
        ...(typeof days === 'string' ? { days: Number(days) } : {}),
      };
    },
  },
];

function column(rows: readonly (readonly [string, string])[]): string[] {
  const width = Math.max(...rows.map(([left]) => left.length)) + 2;
  return rows.map(([left, right]) => `  ${left.padEnd(width)}${right}`);
}

export const HELP_TEXT = [
  'Usage: junction <command> [flags]',
  '',
  'Commands:',
  ...column([
    ...COMMANDS.map((c) => [c.name, c.summary] as const),
    ['help', 'show this help'],
    ['version', 'print the version'],
  ]),
  ...COMMANDS.flatMap((c) => [
    '',
    c.name === 'start'
      ? `Flags for ${c.name} (flags override the config file; [key] is the config key set):`
      : `Flags for ${c.name}${c.positionals ? ` (then ${c.positionals})` : ''}:`,
    ...column([...c.optionHelp, ['-h, --help', 'show this help']]),
  ]),
  '',
  'Global flags:',
  ...column([
    ['-h, --help', 'show this help'],
    ['--version', 'print the version'],
  ]),
  '',
].join('\n');

const HELP: CliCommand = { kind: 'help', text: HELP_TEXT };
const COMMAND_NAMES = [...COMMANDS.map((c) => c.name), 'help', 'version'];

function error(message: string): CliCommand {
  return { kind: 'error', message: `${message}; see junction --help` };
}

function didYouMean(word: string, candidates: readonly string[]): string {
  const hint = closestMatch(word, candidates);
  return hint === undefined ? '' : ` (did you mean ${hint}?)`;
}

/** parseArgs throws TypeErrors with a code; turn the common ones into short messages. */
function parseError(err: unknown, known: readonly string[]): CliCommand {
  const e = err as { code?: string; message?: string };
  const quoted = /'([^']+)'/.exec(e.message ?? '')?.[1] ?? '';
  switch (e.code) {
    case 'ERR_PARSE_ARGS_UNKNOWN_OPTION':
      return error(`unknown flag ${quoted}${didYouMean(quoted, known)}`);
    case 'ERR_PARSE_ARGS_UNEXPECTED_POSITIONAL':
      return error(`unexpected argument '${quoted}'`);
    case 'ERR_PARSE_ARGS_INVALID_OPTION_VALUE':
      // Node's text spans lines and ends with '.'; keep it on one line before our suffix.
      return error((e.message ?? 'invalid flag value').replace(/\s*\n\s*/g, ' ').replace(/\.$/, ''));
    default:
      throw err;
  }
}

function parseCommand(spec: CommandSpec, args: string[]): CliCommand {
  const options = { ...spec.options, help: { type: 'boolean', short: 'h' } as const };
  let values: Values;
  let positionals: string[];
  try {
    ({ values, positionals } = parseArgs({ args, options, strict: true, allowPositionals: spec.positionals !== undefined }));
  } catch (err) {
    return parseError(err, Object.keys(options).map((o) => `--${o}`));
  }
  return values['help'] === true ? HELP : spec.build(values, positionals);
}

export function parseCli(argv: readonly string[]): CliCommand {
  const [first, ...rest] = argv;
  switch (first) {
    case undefined:
      return error('missing command');
    case '-h':
    case '--help':
      return rest.length === 0 ? HELP : error(`unexpected argument '${rest[0]}'`);
    case 'help': {
      // `junction help start` shows the same text: it already covers every command.
      const topic = rest[0];
      if (rest.length > 1) return error(`unexpected argument '${rest[1]}'`);
      return topic === undefined || COMMAND_NAMES.includes(topic) ? HELP : error(`unknown command '${topic}'`);
    }
    case '--version':
    case 'version':
      return rest.length === 0 ? { kind: 'version' } : error(`unexpected argument '${rest[0]}'`);
  }
  if (first.startsWith('-')) {
    const name = first.replace(/^-+/, '').split('=')[0] ?? '';
    const owner = COMMANDS.find((c) => Object.hasOwn(c.options, name));
    if (owner !== undefined) return error(`${first} goes after the command: junction ${owner.name} ${first} ...`);
    return error(`unknown flag ${first}${didYouMean(first, ['--help', '--version'])}`);
  }
  // Two-word commands (`data export`) are looked up by both words.
  const two = rest[0] !== undefined ? COMMANDS.find((c) => c.name === `${first} ${rest[0]}`) : undefined;
  if (two) return parseCommand(two, rest.slice(1));
  const spec = COMMANDS.find((c) => c.name === first);
  if (spec === undefined) {
    const group = COMMANDS.filter((c) => c.name.startsWith(`${first} `)).map((c) => c.name);
    if (group.length > 0) return error(`'${first}' needs one of: ${group.join(', ')}`);
    return error(`unknown command '${first}'${didYouMean(first, COMMAND_NAMES)}`);
  }
  return parseCommand(spec, rest);
}
