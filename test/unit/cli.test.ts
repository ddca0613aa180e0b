import { describe, it, expect } from 'vitest';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { CONFIG_FLAGS, HELP_TEXT, parseCli, type CliCommand } from '../../src/server/cli.js';
import { ConfigError, loadConfig } from '../../src/server/config.js';

function start(argv: string[]): Extract<CliCommand, { kind: 'start' }> {
  const cmd = parseCli(argv);
  if (cmd.kind !== 'start') throw new Error(`expected start, got ${JSON.stringify(cmd)}`);
  return cmd;
}

function errorOf(argv: string[]): string {
  const cmd = parseCli(argv);
  if (cmd.kind !== 'error') throw new Error(`expected an error, got ${JSON.stringify(cmd)}`);
  return cmd.message;
}


/** The README's configuration reference: from its heading to the next top-level section. */
function configReference(): string {
  const readme = readFileSync(new URL('../../README.md', import.meta.url), 'utf8');
  const start = readme.indexOf('## Configuration reference');
  const end = readme.indexOf('\n## ', start + 1);
  return readme.slice(start, end < 0 ? undefined : end);
}

describe('help and version', () => {
  it.each([[['--help']], [['-h']], [['help']], [['help', 'start']], [['start', '--help']], [['start', '-h', '--mqtt-port', '1']]])(
    '%j shows the help',
    (argv) => {
      expect(parseCli(argv)).toEqual({ kind: 'help', text: HELP_TEXT });
    },
  );

  it.each([[['--version']], [['version']]])('%j asks for the version', (argv) => {
    expect(parseCli(argv)).toEqual({ kind: 'version' });
  });

  it('lists every command and flag on its own line and says flags override the file', () => {
    const lines = HELP_TEXT.split('\n');
    for (const command of ['start', 'help', 'version']) expect(lines.some((l) => l.trim().startsWith(`${command} `))).toBe(true);
    for (const flag of ['-c, --config FILE', '--mqtt-port N', '--host ADDR', '--storage ENGINE', '--log-level LEVEL', '--version']) {
      expect(lines.filter((l) => l.trim().startsWith(flag))).toHaveLength(1);
    }
    // --data-dir belongs to start, data export and data import.
    expect(lines.filter((l) => l.trim().startsWith('--data-dir DIR'))).toHaveLength(3);
    for (const command of ['data export', 'data import']) expect(lines.some((l) => l.trim().startsWith(`${command} `))).toBe(true);
    expect(HELP_TEXT).toContain('flags override the config file');
    for (const flag of CONFIG_FLAGS) for (const key of flag.keys) expect(HELP_TEXT).toContain(key);
  });
});

describe('data export / import', () => {
  it('parses both, with the file and engine', () => {
    expect(parseCli(['data', 'export', '--data-dir', 'd'])).toEqual({ kind: 'data-export', dataDir: 'd' });
    expect(parseCli(['data', 'export', '--data-dir', 'd', '-o', 'f.jsonl'])).toEqual({ kind: 'data-export', dataDir: 'd', out: 'f.jsonl' });
    expect(parseCli(['data', 'import', '--data-dir', 'd', '--engine', 'leveldb', 'f.jsonl'])).toEqual({
      kind: 'data-import',
      dataDir: 'd',
      engine: 'leveldb',
      file: 'f.jsonl',
    });
  });

  it('says what is missing', () => {
    const err = (argv: string[]): string => {
      const c = parseCli(argv);
      return c.kind === 'error' ? c.message : `not an error: ${c.kind}`;
    };
    expect(err(['data'])).toMatch(/'data' needs one of: data export, data import/);
    expect(err(['data', 'export'])).toMatch(/needs --data-dir/);
    expect(err(['data', 'import', '--data-dir', 'd', 'f'])).toMatch(/--engine rocksdb or --engine leveldb/);
    expect(err(['data', 'import', '--data-dir', 'd', '--engine', 'lmdb', 'f'])).toMatch(/--engine rocksdb or --engine leveldb/);
    expect(err(['data', 'import', '--data-dir', 'd', '--engine', 'leveldb'])).toMatch(/exactly one FILE/);
    expect(err(['data', 'export', '--data-dir', 'd', 'extra'])).toMatch(/unexpected argument 'extra'/);
  });
});

describe('start', () => {
  it('with no flags: no file, no overrides', () => {
    expect(parseCli(['start'])).toEqual({ kind: 'start', overrides: [] });
  });

  it('--config and -c name the file', () => {
    expect(start(['start', '--config', 'junction.yaml']).configFile).toBe('junction.yaml');
    expect(start(['start', '-c', 'j.yaml']).configFile).toBe('j.yaml');
    expect(start(['start', '--config=x.yaml']).configFile).toBe('x.yaml');
  });

  it('maps each flag to its key, naming the flag as the source, values as text', () => {
    const cmd = start(['start', '--mqtt-port', '0', '--host', '::1', '--storage', 'memory', '--data-dir', 'd', '--log-level', 'debug']);
    expect(cmd.overrides).toEqual([
      { key: 'mqtt.port', value: '0', source: '--mqtt-port' },
      { key: 'mqtt.host', value: '::1', source: '--host' },
      { key: 'stomp.host', value: '::1', source: '--host' },
      { key: 'http.host', value: '::1', source: '--host' },
      { key: 'storage.engine', value: 'memory', source: '--storage' },
      { key: 'storage.dir', value: 'd', source: '--data-dir' },
      { key: 'log.level', value: 'debug', source: '--log-level' },
    ]);
  });

  it('a repeated flag keeps the last value', () => {
    expect(start(['start', '--mqtt-port', '1', '--mqtt-port', '2']).overrides).toEqual([
      { key: 'mqtt.port', value: '2', source: '--mqtt-port' },
    ]);
  });

  it('feeds loadConfig: flags win over the file, paths from flags resolve against cwd', () => {
    const dir = mkdtempSync(join(tmpdir(), 'junction-cli-'));
    try {
      const file = join(dir, 'junction.yaml');
      writeFileSync(file, 'mqtt:\n  port: 1884\nstorage:\n  dir: data\n');
      const cmd = start(['start', '-c', file, '--mqtt-port', '0', '--data-dir', 'flag-data']);
      const config = loadConfig({ file: cmd.configFile ?? '', overrides: cmd.overrides });
      expect(config.mqtt.port).toBe(0);
      expect(config.storage.dir).toBe(resolve('flag-data'));
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('bad flag values fail in the config validator, naming the flag', () => {
    const cmd = start(['start', '--mqtt-port', 'abc']);
    let caught: unknown;
    try {
      loadConfig({ overrides: cmd.overrides });
    } catch (err) {
      caught = err;
    }
    expect(caught).toBeInstanceOf(ConfigError);
    expect((caught as ConfigError).keyPath).toBe('--mqtt-port');
    expect((caught as ConfigError).message).toBe(
      'command line: --mqtt-port: wrong type: expected an integer 0..65535, got the string "abc"',
    );
    expect(() => loadConfig({ overrides: start(['start', '--log-level', 'loud']).overrides })).toThrow(/--log-level: expected one of/);
  });
});

describe('errors', () => {
  it('no command', () => {
    expect(errorOf([])).toBe('missing command; see junction --help');
  });

  it('unknown command, suggesting a close one', () => {
    expect(errorOf(['strat'])).toBe("unknown command 'strat' (did you mean start?); see junction --help");
    expect(errorOf(['serve'])).toBe("unknown command 'serve'; see junction --help");
    expect(errorOf(['help', 'nope'])).toBe("unknown command 'nope'; see junction --help");
  });

  it('unknown flag, suggesting a close one', () => {
    expect(errorOf(['start', '--mqtt-prot', '1'])).toBe('unknown flag --mqtt-prot (did you mean --mqtt-port?); see junction --help');
    expect(errorOf(['start', '--verbose'])).toBe('unknown flag --verbose; see junction --help');
    expect(errorOf(['--verison'])).toBe('unknown flag --verison (did you mean --version?); see junction --help');
  });

  it('a start flag before the command says where it goes', () => {
    expect(errorOf(['--config', 'j.yaml', 'start'])).toBe('--config goes after the command: junction start --config ...; see junction --help');
  });

  it('a flag without its value', () => {
    expect(errorOf(['start', '--mqtt-port'])).toMatch(/^Option '--mqtt-port <value>' argument missing; see junction --help$/);
    expect(errorOf(['start', '--config='])).toBe('--config needs a file name; see junction --help');
  });

  it('a value starting with a dash needs =, and a boolean flag takes no value', () => {
    expect(errorOf(['start', '--mqtt-port', '-1'])).toMatch(/--mqtt-port=-XYZ'; see junction --help$/);
    expect(errorOf(['start', '--help=yes'])).toMatch(/does not take an argument/);
  });

  it('stray arguments', () => {
    expect(errorOf(['start', 'junction.yaml'])).toBe("unexpected argument 'junction.yaml'; see junction --help");
    expect(errorOf(['--version', 'x'])).toBe("unexpected argument 'x'; see junction --help");
    expect(errorOf(['--help', 'x'])).toBe("unexpected argument 'x'; see junction --help");
  });
});

describe('README configuration reference', () => {
  it('lists every config flag with the key it sets', () => {
    const doc = configReference();
    for (const flag of CONFIG_FLAGS) {
      expect(doc).toContain(`| \`--${flag.name} ${flag.arg}\` | ${flag.keys.map((k) => `\`${k}\``).join(', ')} |`);
    }
  });
});
