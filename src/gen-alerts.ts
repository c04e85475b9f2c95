// `tsx src/gen-alerts.ts` (`npm run alerts`): brings alerts/podmesh-rules.yaml into the two
// kustomize components that deliver it: deploy/components/prometheus-operator/
// prometheus-rule.yaml, the PrometheusRule for a cluster run by the prometheus-operator, and
// deploy/components/plain-prometheus/podmesh-rules.yaml, a verbatim copy for the ConfigMap a
// plain Prometheus mounts (kustomize reads no file outside a component's directory). The rule
// file stays the one source (promtool checks and tests it as it is); the PrometheusRule carries
// its groups unchanged, comments included, and test/alerts.test.ts keeps all three in sync.

import { readFileSync, writeFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { Document, isMap, isSeq, parseDocument } from 'yaml';

export const RULES_PATH = 'alerts/podmesh-rules.yaml';
export const PROMETHEUS_RULE_PATH = 'deploy/components/prometheus-operator/prometheus-rule.yaml';
export const PLAIN_RULES_PATH = 'deploy/components/plain-prometheus/podmesh-rules.yaml';
/**
 * The one selector the rule pack uses for podmesh's scrape targets (the agents' `up`), set in
 * one place the way the monitoring mixins do (`_config.podmeshSelector`): the shipped rules use
 * the default, which matches the PodMonitor's job (podmesh/podmesh) and the plain-Prometheus
 * job (podmesh); `npm run alerts -- --agent-selector '...' --out FILE` writes the rule pack for
 * a scrape job of another name.
 */
export const DEFAULT_AGENT_SELECTOR = 'job=~".*podmesh.*", container!="controller"';

/** The rule file with every use of the agent selector replaced; throws if there is none. */
export function withAgentSelector(rulesText: string, selector: string): string {
  const from = `{${DEFAULT_AGENT_SELECTOR}}`;
  const uses = rulesText.split(from).length - 1;
  if (uses === 0) throw new Error(`${RULES_PATH}: the agent selector ${from} is not used`);
  if (selector.includes('{') || selector.includes('}'))
    throw new Error(`--agent-selector: label matchers without braces, e.g. job="podmesh"`);
  return rulesText.split(from).join(`{${selector}}`);
}

/** Where runbook_url points: the runbook pages as published with the project's source. */
export const RUNBOOK_BASE_URL = 'https://github.com/podmesh/podmesh/blob/main/docs/runbooks/';

/** docs/runbooks/ page of an alert, kebab-case like every file: PodmeshMTUBlackHole → podmesh-mtu-black-hole.md. */
export function runbookFile(alert: string): string {
  const kebab = alert
    .replace(/([A-Z]+)([A-Z][a-z])/g, '$1-$2')
    .replace(/([a-z0-9])([A-Z])/g, '$1-$2')
    .toLowerCase();
  return `${kebab}.md`;
}

const HEADER = [
  ' Generated from alerts/podmesh-rules.yaml by `tsx src/gen-alerts.ts`: edit that file, then',
  ' regenerate (test/alerts.test.ts fails while the two differ). Needs the prometheus-operator',
  ' CRDs, like the PodMonitor; the groups are the rule file verbatim.',
].join('\n');

/** The PrometheusRule for a rule file's text; throws with the reason if it isn't a rule file. */
export function renderPrometheusRule(rulesText: string): string {
  const src = parseDocument(rulesText);
  const first = src.errors[0];
  if (first !== undefined) throw new Error(`${RULES_PATH}: ${first.message}`);
  if (!isMap(src.contents)) throw new Error(`${RULES_PATH}: not a mapping`);
  const groups = src.contents.get('groups', true);
  if (!isSeq(groups) || groups.items.length === 0) throw new Error(`${RULES_PATH}: no groups`);
  const doc = new Document({
    apiVersion: 'monitoring.coreos.com/v1',
    kind: 'PrometheusRule',
    metadata: {
      name: 'podmesh',
      namespace: 'podmesh',
      labels: { 'app.kubernetes.io/name': 'podmesh' },
    },
    spec: {},
  });
  doc.setIn(['spec', 'groups'], groups.clone());
  doc.commentBefore = HEADER;
  return doc.toString({ lineWidth: 100, singleQuote: true });
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const root = new URL('../', import.meta.url);
  const rules = readFileSync(new URL(RULES_PATH, root), 'utf8');
  const { values } = parseArgs({
    options: { 'agent-selector': { type: 'string' }, out: { type: 'string' } },
  });
  if (values['agent-selector'] !== undefined || values.out !== undefined) {
    // A rule pack for another setup: written where asked, the shipped copies left alone.
    if (values.out === undefined) throw new Error('--agent-selector needs --out FILE');
    const custom = withAgentSelector(rules, values['agent-selector'] ?? DEFAULT_AGENT_SELECTOR);
    writeFileSync(values.out, custom);
    process.stdout.write(`wrote ${values.out}\n`);
    process.exit(0);
  }
  writeFileSync(new URL(PROMETHEUS_RULE_PATH, root), renderPrometheusRule(rules));
  writeFileSync(new URL(PLAIN_RULES_PATH, root), rules);
  process.stdout.write(`wrote ${PROMETHEUS_RULE_PATH} and ${PLAIN_RULES_PATH}\n`);
}
