// The metrics of other exporters that podmesh's shipped rules read (alerts/plumbing-rules.yaml):
// kube-state-metrics, cAdvisor through the kubelet, and CoreDNS, each with the labels its own
// documentation lists. Declared here once so test/promql.test.ts checks those rules the way it
// checks podmesh's own against the catalogue: a misspelt name or a label the exporter doesn't
// have fails the test instead of leaving an alert silently empty. Target labels (job, instance,
// cluster) come on top, as for podmesh's metrics.

export interface ExternalSeries {
  readonly name: string;
  readonly labels: readonly string[];
  /** Who exports it: where to check the labels when the exporter changes. */
  readonly source: 'kube-state-metrics' | 'cadvisor' | 'coredns';
}

export const EXTERNAL_SERIES: readonly ExternalSeries[] = [
  // kube-state-metrics docs/metrics/workload/*.md (v2).
  {
    name: 'kube_deployment_status_replicas_available',
    labels: ['namespace', 'deployment'],
    source: 'kube-state-metrics',
  },
  {
    name: 'kube_deployment_spec_replicas',
    labels: ['namespace', 'deployment'],
    source: 'kube-state-metrics',
  },
  {
    name: 'kube_daemonset_status_number_unavailable',
    labels: ['namespace', 'daemonset'],
    source: 'kube-state-metrics',
  },
  {
    name: 'kube_pod_container_status_restarts_total',
    labels: ['namespace', 'pod', 'uid', 'container'],
    source: 'kube-state-metrics',
  },
  {
    name: 'kube_pod_container_resource_limits',
    labels: ['namespace', 'pod', 'uid', 'container', 'node', 'resource', 'unit'],
    source: 'kube-state-metrics',
  },
  {
    name: 'kube_pod_info',
    labels: [
      'namespace',
      'pod',
      'uid',
      'host_ip',
      'pod_ip',
      'node',
      'created_by_kind',
      'created_by_name',
      'priority_class',
      'host_network',
    ],
    source: 'kube-state-metrics',
  },
  // cAdvisor's container labels; `node` is not one of them (kube-prometheus-stack's kubelet job
  // may add it, other setups don't), so rules take a Pod's node from kube-state-metrics.
  {
    name: 'container_memory_working_set_bytes',
    labels: ['container', 'id', 'image', 'name', 'namespace', 'pod'],
    source: 'cadvisor',
  },
  // CoreDNS's own metrics plugin: the panic counter has no labels of its own.
  { name: 'coredns_panics_total', labels: [], source: 'coredns' },
];
