// The hub's JSON, as protocols/*.go and apiserver/*.go define it.

export type Protocol = 'http1' | 'http2' | 'grpc' | 'redis' | 'kafka' | 'amqp';
export const PROTOCOLS: Protocol[] = ['http1', 'http2', 'grpc', 'redis', 'kafka', 'amqp'];

export interface Endpoint {
  ip: string;
  port: number;
  pod?: string;
  namespace?: string;
  service?: string;
  workload?: string;
  node?: string;
}

export interface Header {
  name: string;
  value: string;
}

/** A body: "text" when it is UTF-8, "base64" otherwise. */
export interface Body {
  size: number;
  text?: string;
  base64?: string;
  truncated?: boolean;
  encoding?: string;
}

export interface HTTPRequest {
  method: string;
  target: string;
  path: string;
  version: string;
  scheme?: string;
  authority?: string;
  headers: Header[] | null;
  trailers?: Header[];
  body: Body;
}

export interface HTTPResponse {
  version: string;
  status_code: number;
  reason?: string;
  headers: Header[] | null;
  trailers?: Header[];
  body: Body;
  informational?: number[];
}

export interface HTTPRecord {
  request?: HTTPRequest;
  response?: HTTPResponse;
  upgrade?: string;
  stream_id?: number;
  reset_code?: string;
}

export interface ProtoField {
  number: number;
  wire: string;
  kind: string;
  value?: string;
  signed?: string;
  float?: string;
  bytes?: string;
  values?: string[];
  fields?: ProtoField[];
  size?: number;
  truncated?: boolean;
}

export interface GRPCMessage {
  size: number;
  compressed?: boolean;
  data?: string;
  truncated?: boolean;
  fields?: ProtoField[];
  decode_error?: string;
}

export interface GRPCMessages {
  count: number;
  bytes: number;
  encoding?: string;
  messages?: GRPCMessage[];
  truncated?: boolean;
}

export interface GRPCRecord {
  service: string;
  method: string;
  status_code: number;
  status: string;
  message?: string;
  status_details?: ProtoField[];
  authority?: string;
  content_type?: string;
  stream_id?: number;
  http_status?: number;
  reset_code?: string;
  request_metadata?: Header[];
  response_metadata?: Header[];
  trailers?: Header[];
  requests: GRPCMessages;
  responses: GRPCMessages;
}

export interface RedisRecord {
  command?: string;
  key?: string;
  args?: string[];
  arg_count?: number;
  args_truncated?: boolean;
  inline?: boolean;
  queued?: boolean;
  no_reply?: boolean;
  reply_type?: string;
  reply?: string;
  reply_count?: number;
  reply_truncated?: boolean;
  attributes?: string;
  error?: string;
  push_kind?: string;
  channel?: string;
  pattern?: string;
}

export interface KafkaTopic {
  name?: string;
  id?: string;
  partitions?: number[];
}

export interface KafkaError {
  code: number;
  name: string;
  topic?: string;
  partition: number;
  message?: string;
}

export interface KafkaMessage {
  offset: number;
  timestamp_ms: number;
  key?: Body;
  value?: Body;
  headers?: Header[];
}

export interface KafkaBatch {
  topic: string;
  partition: number;
  magic: number;
  compression: string;
  base_offset: number;
  record_count: number;
  size: number;
  transactional?: boolean;
  control?: boolean;
  records?: KafkaMessage[];
  truncated?: boolean;
}

export interface KafkaRecord {
  api_key: number;
  api: string;
  api_version: number;
  correlation_id: number;
  client_id?: string;
  topics?: KafkaTopic[];
  topic_count?: number;
  group_id?: string;
  transactional_id?: string;
  error_code: number;
  error?: string;
  errors?: KafkaError[];
  record_count?: number;
  batches?: KafkaBatch[];
  sasl_mechanism?: string;
  sasl_auth?: Body;
}

export interface AMQPField {
  name?: string;
  type: string;
  value?: string;
  fields?: AMQPField[];
  encoding?: string;
  truncated?: boolean;
}

export interface AMQPProperties {
  content_type?: string;
  content_encoding?: string;
  headers?: AMQPField[];
  delivery_mode?: number;
  priority?: number;
  correlation_id?: string;
  reply_to?: string;
  expiration?: string;
  message_id?: string;
  timestamp?: string;
  type?: string;
  user_id?: string;
  app_id?: string;
  cluster_id?: string;
}

export interface AMQPContent {
  class_id: number;
  body_size: number;
  properties: AMQPProperties;
  body: Body;
  body_frames: number;
}

export interface AMQPReply {
  method: string;
  class_id: number;
  method_id: number;
  arguments?: AMQPField[];
  content?: AMQPContent;
}

export interface AMQPRecord {
  channel: number;
  method: string;
  class_id: number;
  method_id: number;
  sender: string;
  arguments?: AMQPField[];
  content?: AMQPContent;
  reply?: AMQPReply;
  exchange?: string;
  routing_key?: string;
  queue?: string;
  consumer_tag?: string;
  delivery_tag?: number;
  reply_code?: number;
  reply_text?: string;
  confirm?: { delivery_tag: number; status: string; multiple?: boolean };
  protocol_header?: string;
}

export interface Entry {
  id: string;
  protocol: Protocol;
  node?: string;
  source?: string;
  start: string;
  duration_ns: number;
  src: Endpoint;
  dst: Endpoint;
  summary: { method: string; target: string; status: string };
  request_size: number;
  response_size: number;
  unmatched?: '' | 'request' | 'response';
  gap?: boolean;
  redacted?: boolean;
  warnings?: string[];
  http?: HTTPRecord;
  grpc?: GRPCRecord;
  redis?: RedisRecord;
  kafka?: KafkaRecord;
  amqp?: AMQPRecord;
}

/** GET /api/v1/entries */
export interface Page {
  entries: Entry[];
  total?: number;
  next?: string;
  partial?: boolean;
  scanned: number;
  history_start?: string;
}

/** The body of the stream's stats messages. */
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

export interface Percentiles {
  p50_ms: number;
  p90_ms: number;
  p99_ms: number;
  max_ms: number;
}

/** GET /api/v1/stats */
export interface Stats {
  from: string;
  to: string;
  total: number;
  errors: number;
  by_protocol: Record<string, number>;
  by_status_class: Record<string, Record<string, number>>;
  timeline: { start: string; count: number; errors: number }[];
  latency: Percentiles;
  history_start?: string;
}

export interface MapNode {
  id: string;
  kind: 'workload' | 'pod' | 'service' | 'address';
  namespace?: string;
  name: string;
}

export interface MapEdge {
  source: string;
  target: string;
  protocol: Protocol;
  count: number;
  errors: number;
  latency: Percentiles;
}

/** GET /api/v1/servicemap */
export interface ServiceMap {
  from: string;
  to: string;
  nodes: MapNode[];
  edges: MapEdge[];
}

export interface Agent {
  agent_id: string;
  node: string;
  version: string;
  source: string;
  remote: string;
  connected: boolean;
  connected_at: string;
  last_seen: string;
  batches: number;
  entries: number;
  duplicate_batches: number;
  counters: Record<string, number> | null;
  /** The counters that count traffic Sonde could not show. */
  loss: string[] | null;
}

export interface FieldInfo {
  name: string;
  type: string;
  doc: string;
  example: string;
}
