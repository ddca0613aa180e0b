/**
 * The operator artefacts shipped with the metrics: docs/ops/alerts.yml passes `promtool check
 * rules` and its cases in alerts.test.yml (`promtool test rules`), and every expression of
 * docs/ops/grafana-dashboard.json and of the alert rules names a metric family that a running
 * broker serves on /metrics (or /metrics/per-object).
 */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { startBroker } from '../helpers/broker.js';
import { run, scrape } from './metrics-helpers.js';

const DOCS = new URL('../../docs/ops/', import.meta.url).pathname;

/** Metric names used in a PromQL expression (label names, functions and keywords left out). */
function metricNames(expr: string): string[] {
  const withoutStrings = expr.replace(/"(?:[^"\\]|\\.)*"/g, '""').replace(/\{[^}]*\}/g, '{}');
  const words = withoutStrings.match(/[a-zA-Z_:][a-zA-Z0-9_:]*/g) ?? [];
  return words.filter((w) => /^(junction|nodejs|process)_/.test(w));
}

/** The family a series name belongs to (histogram suffixes stripped). */
function familyOf(name: string, families: ReadonlySet<string>): string {
  for (const suffix of ['_bucket', '_sum', '_count']) if (name.endsWith(suffix) && families.has(name.slice(0, -suffix.length))) return name.slice(0, -suffix.length);
  return name;
}

describe('docs/ops: alert rules and Grafana dashboard', async () => {
  const tb = await startBroker({ config: { metrics: { perObject: true } } });
  const families = new Set([...(await scrape(tb)).types.keys(), ...(await scrape(tb, '/metrics/per-object')).types.keys()]);

  it('promtool check rules and promtool test rules pass', async () => {
    const check = await run('promtool', ['check', 'rules', `${DOCS}alerts.yml`]);
    expect(check.stdout + check.stderr).toContain('SUCCESS: 8 rules found');
    expect(check.code).toBe(0);
    const cases = await run('promtool', ['test', 'rules', `${DOCS}alerts.test.yml`]);
    expect(cases.stdout + cases.stderr).toContain('SUCCESS');
    expect(cases.code).toBe(0);
  });

  it('the rules cover DLQ, certificate expiry, failed reload, drops, connections near the limit and p99 ack latency', () => {
    const text = readFileSync(`${DOCS}alerts.yml`, 'utf8');
    for (const alert of ['JunctionDeadLetterQueueNotEmpty', 'JunctionCertificateExpiresSoon', 'JunctionConfigReloadFailed', 'JunctionMessagesDropped', 'JunctionConnectionsNearLimit', 'JunctionAckLatencyHigh']) {
      expect(text).toContain(`alert: ${alert}`);
    }
    const exprs = [...text.matchAll(/expr: (.*)/g)].map((m) => m[1]!);
    for (const e of exprs) for (const n of metricNames(e)) expect(families.has(familyOf(n, families)), `${n} in ${e}`).toBe(true);
  });

  it('the dashboard is a Grafana dashboard model whose every expression names served metric families', () => {
    const d = JSON.parse(readFileSync(`${DOCS}grafana-dashboard.json`, 'utf8')) as {
      title: string;
      uid: string;
      schemaVersion: number;
      panels: Array<{ type: string; id: number; gridPos: { h: number; w: number; x: number; y: number }; targets?: Array<{ expr: string; refId: string }> }>;
      templating: { list: Array<{ name: string; type: string; query?: unknown }> };
    };
    expect(d.title).toBe('Junction');
    expect(d.uid).toMatch(/^[a-z0-9-]{1,40}$/);
    expect(d.schemaVersion).toBeGreaterThanOrEqual(36);
    expect(d.templating.list.map((v) => v.name)).toEqual(['datasource', 'instance']);
    const ids = d.panels.map((p) => p.id);
    expect(new Set(ids).size).toBe(ids.length);
    const exprs = d.panels.flatMap((p) => p.targets ?? []).map((t) => t.expr);
    expect(exprs.length).toBeGreaterThan(25);
    const used = new Set<string>();
    for (const e of exprs) {
      const names = metricNames(e);
      expect(names.length, e).toBeGreaterThan(0);
      for (const n of names) {
        const f = familyOf(n, families);
        expect(families.has(f), `${n} in ${e}`).toBe(true);
        used.add(f);
      }
    }
    for (const p of d.panels) {
      expect(p.gridPos.x + p.gridPos.w).toBeLessThanOrEqual(24);
      if (p.type !== 'row') expect(p.targets?.length, `panel ${p.id}`).toBeGreaterThan(0);
    }
    // The overview the dashboard exists for: connections, rates, ack latency, drops, queues, reloads, TLS.
    for (const f of ['junction_connections', 'junction_messages_received_total', 'junction_publish_ack_latency_seconds', 'junction_messages_dropped_total', 'junction_queue_messages', 'junction_config_last_reload_successful', 'junction_tls_certificate_expiry_timestamp_seconds']) {
      expect(used.has(f), f).toBe(true);
    }
  });
});
