/**
 * A broker started from a YAML file in a temporary directory (in this process, memory store), so
 * that `broker.reload()` and the file watch read the file again as `junction start --config` does.
 */
import { writeFileSync, renameSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll } from 'vitest';
import { Broker } from '../../src/server/broker.js';
import { loadConfig } from '../../src/server/config.js';
import type { LogFields, Logger } from '../../src/core/log.js';
import { MemoryStore } from '../../storage/memory.js';
import { tempDir } from '../helpers/disk.js';

export interface LogLine {
  readonly level: string;
  readonly msg: string;
  readonly fields: LogFields;
}

function capture(logs: LogLine[], bound: LogFields = {}): Logger {
  const at =
    (level: string) =>
    (msg: string, fields?: LogFields): void => {
      logs.push({ level, msg, fields: { ...bound, ...fields } });
      if (process.env['JUNCTION_TEST_LOG']) console.log(level, msg, JSON.stringify({ ...bound, ...fields }));
    };
  return { debug: at('debug'), info: at('info'), warn: at('warn'), error: at('error'), child: (f) => capture(logs, { ...bound, ...f }) };
}

/** The listeners every test file config starts with: loopback, free ports. */
export const LOOPBACK = `mqtt: { host: 127.0.0.1, port: 0 }
stomp: { host: 127.0.0.1, port: 0 }
http: { host: 127.0.0.1, port: 0 }
`;

export interface FileBroker {
  readonly broker: Broker;
  readonly dir: string;
  readonly file: string;
  readonly logs: LogLine[];
  readonly port: number;
  readonly stompPort: number;
  readonly httpPort: number;
  /** Replaces the config file (a complete new file renamed over it, as editors and ConfigMaps do). */
  write(yaml: string): void;
  /** Log lines with this `evt` since index `from`. */
  events(evt: string, from?: number): LogFields[];
}

/** `yaml` is written to `<dir>/junction.yaml`; or `existing` names a config file to use as it is. */
export async function startFileBroker(yaml: string, dir = tempDir('junction-reload-'), existing?: string): Promise<FileBroker> {
  const file = existing ?? join(dir, 'junction.yaml');
  if (existing === undefined) writeFileSync(file, yaml);
  const logs: LogLine[] = [];
  const broker = await Broker.start(loadConfig({ file }), { store: new MemoryStore(), log: capture(logs), configSource: { file } });
  afterAll(() => broker.stop());
  let n = 0;
  const has = (name: string): boolean => broker.listeners.some((l) => l.spec.name === name);
  return {
    broker,
    dir,
    file,
    logs,
    port: has('mqtt') ? broker.port('mqtt') : 0,
    stompPort: has('stomp') ? broker.port('stomp') : 0,
    httpPort: has('http') ? broker.port('http') : 0,
    write(text: string): void {
      const tmp = `${file}.tmp-${++n}`;
      writeFileSync(tmp, text);
      renameSync(tmp, file);
    },
    events(evt: string, from = 0): LogFields[] {
      return logs.slice(from).filter((l) => l.fields['evt'] === evt).map((l) => l.fields);
    },
  };
}
