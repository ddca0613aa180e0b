/**
 * The classic order pipeline, end to end across both protocols (issue: "the classic order pipeline"):
 *
 *   devices (MQTT.js, v5 and 3.1.1)
 *     -> devices/<id>/orders  (bound to queue `orders` by config)  or  $queue/orders
 *   order worker (stompit, /queue/orders, client-individual, prefetch-count 5)
 *     -> SEND /queue/payments (persistent, receipt) then ACK the order; SEND /topic/dashboard/orders/<n>
 *   payments consumer (@stomp/stompjs, /queue/payments, client-individual)
 *     -> ACK and SEND /topic/dashboard/payments/<n>; NACK a declined card, until maxDeliveries (3)
 *        moves it to DLQ.payments
 *   dashboard (MQTT, dashboard/#) sees every result; an MQTT consumer of $queue/DLQ.payments reads
 *   the dead letters with their origin and reason.
 *
 * A second run replaces NACKs with consumers that crash (drop the connection) on a poison message:
 * the disconnects use up the deliveries too. Every count is asserted exactly.
 */
import type { IMessage } from '@stomp/stompjs';
import type { IPublishPacket } from 'mqtt-packet';
import { describe, expect, it } from 'vitest';
import { startBroker } from '../helpers/broker.js';
import { connect, until } from '../helpers/mqtt.js';
import { stompitConnect, stompitDisconnect, stompitSend, stompjsConnect, stompjsReceipt } from '../helpers/stomp.js';
import { StompWire } from '../helpers/stomp-queue.js';

interface Order {
  readonly n: number;
  readonly device: string;
  readonly amount: number;
}

const DEVICES = ['dev-a', 'dev-b', 'dev-c'];
const PER_DEVICE = 10;
/** Orders whose card is declined by the payments consumer. */
const declined = (o: Order): boolean => o.n % 5 === 0;

function userProps(p: IPublishPacket): Record<string, string | string[]> {
  return (p.properties?.userProperties ?? {}) as Record<string, string | string[]>;
}

describe('order pipeline: MQTT devices -> STOMP worker -> payments -> DLQ, MQTT dashboard', async () => {
  const MAX = 3;
  const tb = await startBroker({
    config: {
      queues: {
        maxDeliveries: MAX,
        bindings: [{ queue: 'orders', filter: 'devices/+/orders' }],
      },
    },
  });
  const queues = tb.broker.core.router.queues.queues;
  const depth = (name: string): number => queues.get(name)?.depth ?? 0;

  it('every order is accepted once, every good payment paid once, every declined one dead-lettered after 3 deliveries', { timeout: 30_000 }, async () => {
    const dashboard = await connect(tb.port);
    await dashboard.subscribeAsync('dashboard/#', { qos: 1 });
    const dlq = await connect(tb.port, { protocolVersion: 5 });
    await dlq.subscribeAsync('$queue/DLQ.payments', { qos: 1 });

    // The order worker: stompit, client-individual, at most 5 unacknowledged orders.
    const worker = await stompitConnect(tb.stompPort, { 'accept-version': '1.2' });
    const accepted = new Map<number, number>();
    worker.subscribe({ destination: '/queue/orders', ack: 'client-individual', 'prefetch-count': 5 }, (err, msg) => {
      if (err) return;
      msg.readString('utf-8', (e, body) => {
        if (e || body === undefined) return;
        const order = JSON.parse(body) as Order;
        expect(msg.headers['destination']).toBe('/queue/orders');
        accepted.set(order.n, (accepted.get(order.n) ?? 0) + 1);
        void (async () => {
          // The payment is on disk (RECEIPT) before the order is acknowledged: no order is lost between queues.
          await stompitSend(worker, { destination: '/queue/payments', persistent: 'true', 'content-type': 'application/json', 'x-order': String(order.n) }, JSON.stringify(order));
          worker.ack(msg);
          await stompitSend(worker, { destination: `/topic/dashboard/orders/${order.n}` }, 'accepted');
        })();
      });
    });

    // The payments consumer: stompjs; declines some cards with NACK (requeue).
    const payments = await stompjsConnect(tb.stompPort);
    const seen = new Map<number, IMessage[]>();
    await stompjsReceipt(payments, (receipt) =>
      payments.client.subscribe(
        '/queue/payments',
        (m) => {
          const order = JSON.parse(m.body) as Order;
          const list = seen.get(order.n) ?? [];
          list.push(m);
          seen.set(order.n, list);
          if (declined(order)) {
            m.nack();
            return;
          }
          payments.client.publish({ destination: `/topic/dashboard/payments/${order.n}`, body: 'paid', headers: { persistent: 'true' } });
          m.ack();
        },
        { ack: 'client-individual', receipt },
      ),
    );

    // Devices: 3.1.1 and 5, QoS 1; half of the orders via the binding, half straight into $queue/orders.
    const orders: Order[] = [];
    const devices = await Promise.all(DEVICES.map((id, i) => connect(tb.port, { clientId: id, protocolVersion: i === 1 ? 4 : 5 })));
    await Promise.all(
      devices.map(async (d, i) => {
        for (let k = 0; k < PER_DEVICE; k++) {
          const order: Order = { n: i * PER_DEVICE + k, device: DEVICES[i]!, amount: 10 + k };
          orders.push(order);
          const topic = k % 2 === 0 ? `devices/${order.device}/orders` : '$queue/orders';
          await d.publishAsync(topic, JSON.stringify(order), { qos: 1 });
        }
      }),
    );
    const total = DEVICES.length * PER_DEVICE;
    const bad = orders.filter(declined);
    const good = total - bad.length;
    expect(bad.length).toBe(6);

    const topics = (prefix: string): string[] => dashboard.received.filter((r) => r.topic.startsWith(prefix)).map((r) => r.topic);
    await until(
      () => topics('dashboard/orders/').length === total && topics('dashboard/payments/').length === good && dlq.received.length === bad.length,
      20_000,
      'the pipeline to drain',
    ).catch((err: unknown) => {
      throw new Error(
        `${String(err)}: accepted ${topics('dashboard/orders/').length}/${total}, paid ${topics('dashboard/payments/').length}/${good}, dead ${dlq.received.length}/${bad.length}, depths orders ${depth('orders')} payments ${depth('payments')}`,
      );
    });
    // Drained: nothing left anywhere, so nothing more can arrive.
    await until(() => depth('orders') === 0 && depth('payments') === 0 && depth('DLQ.payments') === 0, 5000, 'empty queues');

    expect([...accepted.keys()].sort((a, b) => a - b)).toEqual(orders.map((o) => o.n).sort((a, b) => a - b));
    for (const times of accepted.values()) expect(times).toBe(1);
    expect(new Set(topics('dashboard/orders/')).size).toBe(total);
    expect(new Set(topics('dashboard/payments/'))).toEqual(new Set(orders.filter((o) => !declined(o)).map((o) => `dashboard/payments/${o.n}`)));
    for (const r of dashboard.received.filter((x) => x.topic.startsWith('dashboard/orders/'))) expect(r.payload.toString()).toBe('accepted');

    // Declined payments: delivered exactly MAX times (redelivered from the second on), then dead.
    for (const o of orders) {
      const deliveries = seen.get(o.n) ?? [];
      expect(deliveries.length, `payment ${o.n}`).toBe(declined(o) ? MAX : 1);
      deliveries.forEach((m, i) => expect(m.headers['redelivered'], `payment ${o.n} #${i}`).toBe(i === 0 ? undefined : 'true'));
    }
    const dead = dlq.received.map((r) => JSON.parse(r.payload.toString()) as Order);
    expect(dead.map((o) => o.n).sort((a, b) => a - b)).toEqual(bad.map((o) => o.n).sort((a, b) => a - b));
    for (const r of dlq.received) {
      expect(r.topic).toBe('$queue/payments');
      expect(r.packet.properties?.contentType).toBe('application/json');
      expect(userProps(r.packet)).toMatchObject({ 'x-order': String((JSON.parse(r.payload.toString()) as Order).n), 'x-first-death-queue': 'payments', 'x-first-death-reason': 'max_deliveries' });
    }
    await stompitDisconnect(worker);
    await payments.client.deactivate();
  });

  it('a payments consumer that crashes on a poison message: its disconnects use up the deliveries, the poison goes to DLQ.poison-payments', { timeout: 30_000 }, async () => {
    const q = 'poison-payments';
    const healthy: string[] = [];
    const crashes: string[] = [];
    let running = true;
    let current: StompWire | undefined;
    // A supervisor that restarts the crashing consumer, as systemd or Kubernetes would.
    const supervise = async (): Promise<void> => {
      while (running) {
        const c = (current = await StompWire.connect(tb.stompPort));
        await c.subscribe(`/queue/${q}`, 'p', 'client-individual', { 'prefetch-count': '1' });
        for (;;) {
          const m = await c.next((f) => f.command === 'MESSAGE', 60_000).catch(() => undefined);
          if (!m) return;
          const body = m.body.toString();
          if (body.startsWith('poison')) {
            crashes.push(`${body}${m.headers['redelivered'] === 'true' ? ' (redelivered)' : ''}`);
            c.destroy();
            await c.closedPromise;
            break;
          }
          healthy.push(body);
          c.ack(m);
        }
      }
    };
    const supervisor = supervise();
    const producer = await StompWire.connect(tb.stompPort);
    for (let i = 0; i < 4; i++) await producer.send(`/queue/${q}`, `ok-${i}`, { persistent: 'true' });
    await producer.send(`/queue/${q}`, 'poison-1', { persistent: 'true' });
    for (let i = 4; i < 8; i++) await producer.send(`/queue/${q}`, `ok-${i}`, { persistent: 'true' });
    const dead = await StompWire.connect(tb.stompPort);
    await dead.subscribe(`/queue/DLQ.${q}`, 'd', 'auto');
    const [d] = await dead.waitMessages(1, undefined, 10_000);
    await until(() => healthy.length === 8, 10_000, 'the healthy messages');
    running = false;
    current?.destroy(); // ends the supervisor's wait
    expect(d!.body.toString()).toBe('poison-1');
    expect([d!.headers['x-first-death-queue'], d!.headers['x-first-death-reason']]).toEqual([q, 'max_deliveries']);
    expect(crashes).toEqual(['poison-1', 'poison-1 (redelivered)', 'poison-1 (redelivered)']);
    expect(healthy.sort()).toEqual(['ok-0', 'ok-1', 'ok-2', 'ok-3', 'ok-4', 'ok-5', 'ok-6', 'ok-7']);
    await supervisor;
  });
});
