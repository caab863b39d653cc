// The hub's JSON. Most of it is generated from the Go types (types.gen.ts,
// by web/internal/tsgen); what follows by hand are the answers the hub
// builds from Go types that are not named and exported, which the generator
// cannot reach. Each names the Go code it mirrors.
import type { AgentInfo, Entry, FieldInfo, MapEdge, MapNode } from './types.gen';

export * from './types.gen';

/** GET /api/v1/entries: apiserver's page (unexported), entries in full. */
export interface Page {
  entries: Entry[];
  total?: number;
  next?: string;
  partial?: boolean;
  scanned: number;
  history_start?: string;
}

/** The body of the stream's stats messages: apiserver's streamStats (unexported). */
export interface HubStats {
  time: string;
  stored: number;
  store_bytes: number;
  storage_limit: number;
  history_start?: string;
  evicted: number;
  ingested: number;
  agents: number;
  stream_clients: number;
}

/** GET /api/v1/servicemap: an anonymous struct in apiserver's serviceMap. */
export interface ServiceMap {
  from: string;
  to: string;
  nodes: MapNode[];
  edges: MapEdge[];
}

/** GET /api/v1/agents: a map literal in apiserver's handler. */
export interface AgentsAnswer {
  agents: AgentInfo[];
}

/** GET /api/v1/query/fields: a map literal in apiserver's handler. */
export interface FieldsAnswer {
  fields: FieldInfo[];
}

/** POST /api/v1/query/validate: a map literal in apiserver's handler. */
export interface ValidateAnswer {
  ok: boolean;
}
