/**
 * `junction passwd FILE USER` / `junction passwd -D FILE USER`: manages a password file the way
 * mosquitto_passwd does (the file may be shared with Mosquitto). The password comes from a prompt
 * (typed twice, not echoed) or, for scripts, from standard input with --password-stdin. The file is
 * rewritten atomically (a temporary file renamed over it), readable by its owner only.
 */
import { existsSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { createInterface } from 'node:readline';
import { Writable } from 'node:stream';
import { hashPassword, parsePasswordFile, renderPasswordFile } from './auth/passwords.js';

export class PasswdError extends Error {}

async function readStdin(): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const c of process.stdin) chunks.push(c as Buffer);
  // One trailing newline is the end of the line, not part of the password.
  return Buffer.concat(chunks).toString('utf8').replace(/\r?\n$/, '');
}

/** Asks without echoing what is typed. */
async function ask(question: string): Promise<string> {
  let muted = false;
  const output = new Writable({
    write(chunk: Buffer, _enc, done) {
      if (!muted) process.stderr.write(chunk);
      done();
    },
  });
  const rl = createInterface({ input: process.stdin, output, terminal: true });
  try {
    const answer = new Promise<string>((resolve) => rl.question(question, resolve));
    muted = true;
    const a = await answer;
    process.stderr.write('\n');
    return a;
  } finally {
    rl.close();
  }
}

export async function passwd(file: string, user: string, remove: boolean, passwordStdin: boolean): Promise<string> {
  const users = existsSync(file) ? parsePasswordFile(readFileSync(file, 'utf8'), file) : new Map<string, string>();
  if (remove) {
    if (!users.delete(user)) throw new PasswdError(`${file}: no user ${JSON.stringify(user)}`);
  } else {
    let password: string;
    if (passwordStdin) password = await readStdin();
    else {
      if (!process.stdin.isTTY) throw new PasswdError('no terminal to ask for the password: use --password-stdin');
      password = await ask('Password: ');
      if ((await ask('Reenter password: ')) !== password) throw new PasswdError('the passwords do not match');
    }
    if (password === '') throw new PasswdError('empty password');
    users.set(user, await hashPassword(password));
  }
  const tmp = `${file}.tmp-${process.pid}`;
  writeFileSync(tmp, renderPasswordFile(users), { mode: 0o600 });
  renameSync(tmp, file);
  return remove ? `removed ${user} from ${file}` : `set the password of ${user} in ${file}`;
}
