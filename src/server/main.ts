#!/usr/bin/env node
/**
 * `junction`: the command line. Parses argv (cli.ts), loads and checks the config (config.ts), and
 * runs the broker until SIGINT/SIGTERM, then stops it cleanly. A second signal exits at once.
 */
import { Broker } from './broker.js';
import { parseCli } from './cli.js';
import { ConfigError, loadConfig, type Config, type ConfigOverrides } from './config.js';
import { ListenerError } from './listeners.js';
import { AuthLoadError } from './auth/broker-access.js';
import { PasswordFileError } from './auth/passwords.js';
import { PasswdError, passwd } from './passwd-command.js';
import { VERSION } from './version.js';
import { StoreOpenError } from '../../storage/store.js';
import { ImportError } from '../../storage/export.js';
import { dataExport, dataImport } from './data-commands.js';
import { makeDevCerts } from './certs.js';
import { tokenCreateText } from './http/token-command.js';


async function start(configFile: string | undefined, overrides: ConfigOverrides): Promise<void> {
  let config: Config;
  try {
    config = loadConfig({ ...(configFile !== undefined ? { file: configFile } : {}), overrides });
  } catch (err) {
    if (err instanceof ConfigError) {
      process.stderr.write(`junction: bad configuration: ${err.message}\n`);
      process.exit(1);
    }
    throw err;
  }
  // Signals are handled from the first moment: one that arrives while storage is still loading
  // stops the broker as soon as it has started, instead of killing it half-way.
  let broker: Broker | undefined;
  let stopRequested: NodeJS.Signals | undefined;
  let signals = 0;
  const stop = (signal: NodeJS.Signals): void => {
    if (++signals > 1) {
      process.stderr.write(`junction: second ${signal}: exiting now\n`);
      process.exit(130);
    }
    if (!broker) {
      stopRequested = signal;
      return;
    }
    const b = broker;
    b.log.info('signal received, stopping', { signal });
    b.stop().then(
      () => process.exit(0),
      (err: unknown) => {
        b.log.error('error while stopping', { error: String(err) });
        process.exit(1);
      },
    );
  };
  process.on('SIGINT', stop);
  process.on('SIGTERM', stop);
  // As Mosquitto: SIGHUP re-reads the TLS certificates and keys (new handshakes use them). Handled
  // from the start too, since its default action would kill the process.
  // SIGHUP: log.file is opened again (logrotate moved it), then the config file and every file
  // it names are reloaded, all or nothing (reload.ts); clients stay connected.
  process.on('SIGHUP', () => {
    if (!broker) return;
    broker.reopenLogs();
    broker.log.info('SIGHUP: reloading TLS material, password and ACL files', { signal: 'SIGHUP', also: 'the config file; log.file reopened' });
    try {
      broker.reload('sighup');
    } catch (err) {
      broker.log.error('configuration reload crashed', { error: err instanceof Error ? (err.stack ?? err.message) : String(err) });
    }
  });
  try {
    broker = await Broker.start(config, { configSource: { file: configFile, overrides } });
  } catch (err) {
    if (err instanceof ConfigError) {
      process.stderr.write(`junction: bad configuration: ${err.message}\n`);
      process.exit(1);
    }
    if (err instanceof ListenerError || err instanceof StoreOpenError || err instanceof AuthLoadError) {
      process.stderr.write(`junction: cannot start: ${err.message}\n`);
      process.exit(1);
    }
    throw err;
  }
  if (stopRequested) {
    signals = 0;
    stop(stopRequested);
    return;
  }
}

const cmd = parseCli(process.argv.slice(2));
switch (cmd.kind) {
  case 'help':
    process.stdout.write(cmd.text);
    break;
  case 'version':
    process.stdout.write(`junction ${VERSION}\n`);
    break;
  case 'error':
    process.stderr.write(`junction: ${cmd.message}\n`);
    process.exit(2);
    break;
  case 'start':
    await start(cmd.configFile, cmd.overrides);
    break;
  case 'certs':
    process.exit(makeDevCerts(cmd.dir, cmd.clientCn, cmd.days));
  case 'token-create':
    process.stdout.write(tokenCreateText(cmd.name, cmd.role));
    break;
    break;
  case 'passwd':
    try {
      process.stderr.write(`junction: ${await passwd(cmd.file, cmd.user, cmd.remove, cmd.passwordStdin)}\n`);
    } catch (err) {
      if (err instanceof PasswdError || err instanceof PasswordFileError) {
        process.stderr.write(`junction: ${err.message}\n`);
        process.exit(1);
      }
      throw err;
    }
    break;
  case 'data-export':
  case 'data-import':
    try {
      const done = cmd.kind === 'data-export' ? await dataExport(cmd.dataDir, cmd.out) : await dataImport(cmd.dataDir, cmd.engine, cmd.file);
      process.stderr.write(`junction: ${done}\n`);
    } catch (err) {
      if (err instanceof StoreOpenError || err instanceof ImportError) {
        process.stderr.write(`junction: ${err.message}\n`);
        process.exit(1);
      }
      throw err;
    }
    break;
}
