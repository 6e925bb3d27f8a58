// The OpenAPI 3 description of konami's HTTP API, served at /v1/openapi.json.
// A test checks every route the server has against it, and back.
const envelope = (data: object) => ({
  type: 'object',
  required: ['data', 'status', 'request_id'],
  properties: { data, status: { type: 'string', enum: ['success'] }, request_id: { type: 'string' } },
});

const error = {
  description: 'an error, in the envelope',
  content: {
    'application/json': {
      schema: {
        type: 'object',
        required: ['status', 'error', 'message', 'data', 'request_id'],
        properties: {
          status: { type: 'string', enum: ['error'] },
          error: { type: 'string', description: 'the HTTP status code' },
          message: { type: 'string' },
          data: { type: 'object', description: '{field: {rule: {message}}}', additionalProperties: { type: 'object' } },
          request_id: { type: 'string' },
        },
      },
    },
  },
};

const errors = (...codes: number[]) => Object.fromEntries(codes.map((c) => [String(c), { $ref: `#/components/responses/Error` }]));
const ok = (description: string, data: object, status = '200') => ({
  [status]: { description, content: { 'application/json': { schema: envelope(data) } } },
});
/** Reads accept the token in the query too (as Kazoo's clients send it where they cannot set a header); changes only in the header. */
const auth = [{ authToken: [] }, { authTokenQuery: [] }];
const headerAuth = [{ authToken: [] }];
const accountParam = { name: 'ACCOUNT_ID', in: 'path', required: true, schema: { type: 'string', pattern: '^[0-9a-f]{32}$' } };
const callParam = { name: 'CALL_ID', in: 'path', required: true, schema: { type: 'string' }, description: "a party's channel id" };
const jsonBody = (schema: object) => ({ required: true, content: { 'application/json': { schema } } });

const transfer = { $ref: '#/components/schemas/Transfer' };
const channel = { $ref: '#/components/schemas/Channel' };
const metaflows = { $ref: '#/components/schemas/Metaflows' };

const user = { $ref: '#/components/schemas/User' };
const userParam = { name: 'USER_ID', in: 'path', required: true, schema: { type: 'string', pattern: '^[0-9a-f]{32}$' } };
const userChange = {
  type: 'object', additionalProperties: false,
  properties: {
    username: { type: 'string' }, first_name: { type: 'string' }, last_name: { type: 'string' },
    numbers: { type: 'array', items: { type: 'string', pattern: '^\\+?[0-9]{1,32}$' }, maxItems: 10, description: 'the extension numbers that are the user\'s: its calls are those with one of them as a party' },
    password: { type: 'string', format: 'password', minLength: 8, description: 'write only' },
  },
};

const DOCUMENT = {
  openapi: '3.0.3',
  info: {
    title: 'konami',
    version: '1',
    description: 'In-call feature codes and attended transfer for Asterisk: calls, transfers and metaflows of an account, in 2600hz Kazoo crossbar conventions.',
  },
  paths: {
    '/healthz': { get: { summary: 'the process is up', responses: { 200: { description: 'up' } } } },
    '/readyz': {
      get: { summary: 'ARI connected, the store usable, calls reconciled with Asterisk', responses: { 200: { description: 'ready' }, 503: { description: 'not ready, with each check' } } },
    },
    '/metrics': { get: { summary: 'Prometheus metrics: active calls, transfers by outcome, codes matched, ARI reconnects, API requests by route and status', responses: { 200: { description: 'text exposition format' } } } },
    '/v1/openapi.json': { get: { summary: 'this document', responses: { 200: { description: 'the OpenAPI document' } } } },
    '/v1/api_auth': Object.fromEntries(['put', 'post'].map((m) => [m, {
      summary: 'exchange an account API key for an expiring auth token',
      requestBody: jsonBody({
        type: 'object', required: ['data'],
        properties: { data: { type: 'object', required: ['api_key'], properties: { api_key: { type: 'string' } } } },
      }),
      responses: {
        201: {
          description: 'the token (also at the top level as auth_token)',
          content: { 'application/json': { schema: { ...envelope({ type: 'object', properties: { account_id: { type: 'string' }, account_name: { type: 'string' }, expires_at: { type: 'string', format: 'date-time' } } }), properties: { ...envelope({}).properties, data: { type: 'object' }, auth_token: { type: 'string' } } } } },
        },
        ...errors(400, 401, 413, 415, 429),
      },
    }])),
    '/v1/token_auth': {
      get: {
        summary: 'the token presented: its account and lifetime', security: auth,
        responses: { ...ok('the token', { type: 'object', properties: { account_id: { type: 'string' }, issued_at: { type: 'string' }, expires_at: { type: 'string' } } }), ...errors(401, 429) },
      },
      delete: {
        summary: 'sign out: the token presented is refused from now on, by every instance', security: headerAuth,
        responses: { ...ok('revoked', { type: 'object' }), ...errors(401, 429) },
      },
    },
    '/v1/user_auth': Object.fromEntries(['put', 'post'].map((m) => [m, {
      summary: "a user's credentials for a token that sees and acts on that user's calls only (Kazoo's user_auth)",
      requestBody: jsonBody({
        type: 'object', required: ['data'],
        properties: {
          data: {
            type: 'object',
            description: 'account_id or account_name (when it names one account); credentials (Kazoo: md5, or with method sha sha1, of "username:password", hex) or username and password',
            properties: {
              account_id: { type: 'string' }, account_name: { type: 'string' },
              credentials: { type: 'string' }, method: { type: 'string', enum: ['md5', 'sha'], default: 'md5' },
              username: { type: 'string' }, password: { type: 'string', format: 'password' },
            },
          },
        },
      }),
      responses: {
        201: {
          description: 'the token (also at the top level as auth_token); owner_id is the user',
          content: { 'application/json': { schema: envelope({ type: 'object', properties: { account_id: { type: 'string' }, account_name: { type: 'string' }, owner_id: { type: 'string' }, username: { type: 'string' }, expires_at: { type: 'string', format: 'date-time' } } }) } },
        },
        ...errors(400, 401, 413, 415, 429),
      },
    }])),
    '/v1/accounts/{ACCOUNT_ID}/users': {
      get: { summary: "the account's users (the account's token only)", security: auth, parameters: [accountParam], responses: { ...ok('the users', { type: 'array', items: user }), ...errors(401, 404, 429) } },
      put: {
        summary: 'add a user (the account\'s token only)', security: headerAuth, parameters: [accountParam],
        requestBody: jsonBody({ type: 'object', required: ['data'], properties: { data: userChange } }),
        responses: { ...ok('the user', user, '201'), ...errors(400, 401, 404, 413, 415, 429) },
      },
    },
    '/v1/accounts/{ACCOUNT_ID}/users/{USER_ID}': {
      get: { summary: 'one user (to the account, or to that user)', security: auth, parameters: [accountParam, userParam], responses: { ...ok('the user', user), ...errors(401, 404, 429) } },
      ...Object.fromEntries(['post', 'patch'].map((m) => [m, {
        summary: 'change the fields given (the account\'s token only); a new password, or a new username with its password, ends the user\'s tokens',
        security: headerAuth, parameters: [accountParam, userParam],
        requestBody: jsonBody({ type: 'object', required: ['data'], properties: { data: userChange } }),
        responses: { ...ok('the user', user), ...errors(400, 401, 404, 413, 415, 429) },
      }])),
      delete: { summary: 'remove the user: their tokens stop working (the account\'s token only)', security: headerAuth, parameters: [accountParam, userParam], responses: { ...ok('removed', { type: 'object' }), ...errors(401, 404, 429) } },
    },
    '/v1/accounts/{ACCOUNT_ID}/events': {
      get: {
        summary: "server-sent events (text/event-stream) for the account's calls, or a user token's own: CHANNEL_CREATE, CHANNEL_ANSWER, CHANNEL_BRIDGE, CHANNEL_TRANSFEROR, CHANNEL_TRANSFEREE, CHANNEL_DESTROY; each data is {event_name, call_id, channel} with the channel as GET channels shows it. At most 20 streams per account; the stream ends with the token",
        security: auth, parameters: [accountParam],
        responses: { 200: { description: 'the event stream', content: { 'text/event-stream': { schema: { type: 'string' } } } }, ...errors(401, 404, 429) },
      },
    },
    '/v1/accounts/{ACCOUNT_ID}/users/{USER_ID}/events': {
      get: {
        summary: "the same stream for one user's calls (to the account, or to that user)", security: auth, parameters: [accountParam, userParam],
        responses: { 200: { description: 'the event stream', content: { 'text/event-stream': { schema: { type: 'string' } } } }, ...errors(401, 404, 429) },
      },
    },
    '/v1/accounts/{ACCOUNT_ID}/channels': {
      get: {
        summary: "the account's calls, a channel per party (to a user's token: the user's calls)", security: auth, parameters: [accountParam],
        responses: { ...ok('the channels', { type: 'array', items: channel }), ...errors(401, 404, 429) },
      },
    },
    '/v1/accounts/{ACCOUNT_ID}/channels/{CALL_ID}': {
      get: {
        summary: 'one channel', security: auth, parameters: [accountParam, callParam],
        responses: { ...ok('the channel', channel), ...errors(401, 404, 429) },
      },
      post: {
        summary: "act on a channel, as Kazoo's channel actions: transfer (this party is the transferor; every account may), cancel the transfer in progress, hangup, break. Kazoo's callflow, intercept, hold, unhold and move answer 400 naming what konami takes; so does any field an action does not take",
        security: headerAuth, parameters: [accountParam, callParam],
        requestBody: jsonBody({
          type: 'object', required: ['data'],
          properties: {
            data: {
              type: 'object', required: ['action'], additionalProperties: false,
              properties: {
                action: { type: 'string', enum: ['transfer', 'cancel', 'hangup', 'break'], description: 'break stops what konami plays to the channel (a tone, ringback)' },
                target: { type: 'string', pattern: '^\\+?[0-9]{1,32}$', description: 'transfer: the number to transfer to (required)' },
                transfer_type: { type: 'string', enum: ['attended', 'blind'], default: 'attended', description: 'transfer: blind hangs the transferor up at once; the transferee hears ringback until the target answers (also spelled transfer-type, Transfer-Type)' },
                takeback_dtmf: { type: 'string', pattern: '^[0-9*#A-Da-d]{1,8}$', default: '*1', description: 'transfer: keys the transferor presses to cancel it' },
                moh: { type: 'string', default: 'default', description: 'transfer: music-on-hold class the transferee hears (also spelled moh_class)' },
                ringback: { type: 'string', default: 'ring', description: 'transfer: what a party waiting for the target hears: ring, dial, busy, congestion, callwaiting, dialrecall, record, info, stutter, or %(on ms,off ms,Hz[,Hz])' },
              },
            },
          },
        }),
        responses: { ...ok('accepted: the transfer (transfer, cancel) or {} (hangup, break)', transfer, '202'), ...errors(400, 401, 404, 409, 413, 415, 429, 503) },
      },
    },
    '/v1/accounts/{ACCOUNT_ID}/metaflows': {
      get: { summary: "the account's metaflows (null: none)", security: auth, parameters: [accountParam], responses: { ...ok('the metaflows', metaflows), ...errors(401, 404, 429) } },
      post: {
        summary: 'replace the metaflows (validated)', security: headerAuth, parameters: [accountParam],
        requestBody: jsonBody({ type: 'object', required: ['data'], properties: { data: metaflows } }),
        responses: { ...ok('the metaflows saved, defaults applied', metaflows), ...errors(400, 401, 404, 413, 415, 429) },
      },
      delete: { summary: 'remove the metaflows (no feature codes)', security: headerAuth, parameters: [accountParam], responses: { ...ok('removed', { nullable: true }), ...errors(401, 404, 429) } },
    },
  },
  components: {
    securitySchemes: {
      authToken: { type: 'apiKey', in: 'header', name: 'X-Auth-Token' },
      authTokenQuery: { type: 'apiKey', in: 'query', name: 'auth_token', description: 'for GET requests only; never logged' },
    },
    responses: { Error: error },
    schemas: {
      Transfer: {
        type: 'object',
        properties: {
          id: { type: 'string' },
          state: { type: 'string', enum: ['calling', 'consulting', 'partial', 'recalling', 'recall_wait', 'transferee_gone', 'ended'] },
          outcome: { type: 'string', nullable: true },
          target: { type: 'string' },
          transferor: { type: 'string' },
          transferee: { type: 'string' },
          target_answered: { type: 'boolean' },
        },
      },
      Channel: {
        type: 'object',
        properties: {
          id: { type: 'string' }, uuid: { type: 'string', description: "the same as id, Kazoo's name" },
          call_id: { type: 'string' }, other_leg: { type: 'string', nullable: true },
          destination: { type: 'string', description: 'the number the caller dialled' },
          owner_id: { type: 'string', description: 'the user whose number this party is, when one is' },
          timestamp: { type: 'integer', description: 'when the call started, in Gregorian seconds as Kazoo counts' },
          direction: { type: 'string', enum: ['inbound', 'outbound'] },
          caller_id: { type: 'object' }, callee_id: { type: 'object' },
          state: { type: 'string', enum: ['ringing', 'answered', 'ending'] }, answered: { type: 'boolean' },
          created_at: { type: 'string' }, answered_at: { type: 'string', nullable: true },
          transfer: { ...transfer, nullable: true }, last_transfer: { ...transfer, nullable: true },
        },
      },
      User: {
        type: 'object',
        properties: {
          id: { type: 'string' }, username: { type: 'string' }, first_name: { type: 'string' }, last_name: { type: 'string' },
          numbers: { type: 'array', items: { type: 'string' } }, created: { type: 'string' }, updated: { type: 'string' },
        },
      },
      Metaflows: {
        type: 'object', nullable: true,
        description: "Kazoo's metaflows. Also taken wrapped as {\"metaflows\": {...}}, with binding_key for binding_digit, digit_timeout_ms for digit_timeout, listen_on self/peer/ab for a/b/both and empty children on a code; always stored and shown in this spelling",
        properties: {
          binding_digit: { type: 'string', default: '*' }, digit_timeout: { type: 'integer', default: 2000, description: 'milliseconds' },
          listen_on: { type: 'string', enum: ['a', 'b', 'both'], default: 'both' },
          numbers: { type: 'object' }, patterns: { type: 'object' },
        },
      },
    },
  },
} as const;

/** Kazoo's clients call /v2: every /v1 route is served there too, the same. */
/** A user's calls: the same operations as the account's channels, under /users/{USER_ID}. */
const withUserChannels = Object.fromEntries(Object.entries(DOCUMENT.paths).flatMap(([path, ops]) => {
  if (!path.startsWith('/v1/accounts/{ACCOUNT_ID}/channels')) return [[path, ops]];
  const mine = Object.fromEntries(Object.entries(ops).map(([m, op]) => [m, {
    ...op,
    summary: `${(op as { summary: string }).summary}: of one user's calls (to the account, or to that user)`,
    parameters: [accountParam, userParam, ...((op as { parameters: object[] }).parameters.slice(1))],
  }]));
  return [[path, ops], [path.replace('/channels', '/users/{USER_ID}/channels'), mine]];
}));

export const OPENAPI = {
  ...DOCUMENT,
  paths: Object.fromEntries(Object.entries(withUserChannels).flatMap(([path, ops]) => (
    path.startsWith('/v1/') ? [[path, ops], [`/v2/${path.slice(4)}`, ops]] : [[path, ops]]
  ))),
};
