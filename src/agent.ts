// `podmesh agent`, as callers import it: the agent itself lives in src/agent/ (agent.ts wires
// its parts: engines.ts, dns-setup.ts, results-row.ts, health.ts).

export { Agent, type AgentOptions } from './agent/agent.ts';
export type { AgentProbesInfo, AgentResults } from './agent/results-row.ts';
