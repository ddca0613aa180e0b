// aedes.mjs: Aedes (the Node.js MQTT broker) on 127.0.0.1:$AEDES_PORT, as a benchmark peer.
// Adapted from the team's shared tools (shared/tools/aedes.mjs). Aedes lives outside the project:
// bench/run.mjs installs it into $AEDES_PEER_DIR (default <tmpdir>/junction-bench/aedes-peer).
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { createRequire } from 'node:module';
import { pathToFileURL } from 'node:url';

const dir = process.env.AEDES_PEER_DIR || path.join(os.tmpdir(), 'junction-bench', 'aedes-peer');
const port = Number(process.env.AEDES_PORT || 18831);
const req = createRequire(path.join(dir, 'package.json'));
const mod = await import(pathToFileURL(req.resolve('aedes')).href);
const Aedes = mod.Aedes || mod.default;
const broker = typeof Aedes.createBroker === 'function' ? await Aedes.createBroker() : Aedes();
net.createServer(broker.handle).listen(port, '127.0.0.1', () => console.log(`aedes on 127.0.0.1:${port}`));
