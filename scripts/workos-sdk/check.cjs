// The Node WorkOS SDK (`@workos-inc/node` 12.x on Node 22, 8.x on Node 20)
// against a live Roster: every Directory Sync, Events and Webhooks call an
// app makes, with the host and key as the only change. Run by run.sh from the
// directory the SDK is installed in. Prints `workos-sdk node N: M checks passed`.
'use strict';

const fs = require('node:fs');
const http = require('node:http');
const { execFileSync } = require('node:child_process');
const { WorkOS, NotFoundException } = require('@workos-inc/node');

const env = process.env;
const major = Number(env.WORKOS_NODE_MAJOR);
const url = new URL(env.ROSTER_URL);
const workos = new WorkOS(env.WORKOS_API_KEY, {
  apiHostname: url.hostname,
  port: Number(url.port),
  https: false,
});
const ds = workos.directorySync;
const fixture = JSON.parse(fs.readFileSync(env.ROSTER_FIXTURE, 'utf8'));
const { users, groups } = fixture;
const directory = env.ROSTER_DIRECTORY;
// N12 takes `{id}`, N8 the bare id.
const byId = (id) => (major >= 11 ? { id } : id);

let checks = 0;
function check(ok, what) {
  if (!ok) throw new Error(`check failed: ${what}`);
  checks += 1;
}
const sorted = (a) => [...a].sort();
const same = (a, b) => JSON.stringify(a) === JSON.stringify(b);

// Every page forwards with `after`, then back from the last with `before`.
async function walk(listFn, limit, order, params) {
  const pages = [];
  let page = await listFn({ ...params, limit, order });
  check(!page.listMetadata.before, `first ${order} page has no before`);
  for (;;) {
    const ids = page.data.map((o) => o.id);
    check(ids.length <= limit, 'a page holds at most limit objects');
    pages.push(ids);
    if (!page.listMetadata.after) break;
    page = await listFn({ ...params, limit, order, after: page.listMetadata.after });
  }
  const forwards = pages.flat();
  if (pages.length > 1) {
    const back = [];
    let before = pages[pages.length - 1][0];
    while (before) {
      const p = await listFn({ ...params, limit, order, before });
      if (p.data.length === 0) break;
      back.unshift(p.data.map((o) => o.id));
      before = p.listMetadata.before;
    }
    check(same([...back.flat(), ...pages[pages.length - 1]], forwards), `${order}: back with before = forwards`);
  }
  check(new Set(forwards).size === forwards.length, `${order}: no object twice`);
  return forwards;
}

async function bothOrders(listFn, limit, params = {}) {
  const desc = await walk(listFn, limit, 'desc', params);
  const asc = await walk(listFn, limit, 'asc', params);
  check(same(asc, [...desc].reverse()), 'asc is desc reversed');
  return desc;
}

async function notFound(call, what) {
  try {
    await call();
    check(false, `${what}: NotFoundException`);
  } catch (e) {
    check(e instanceof NotFoundException, `${what}: NotFoundException (got ${e && e.name})`);
  }
}

function scim(method, path, body) {
  return fetch(env.ROSTER_SCIM_BASE + path, {
    method,
    headers: { Authorization: `Bearer ${env.ROSTER_SCIM_TOKEN}`, 'Content-Type': 'application/scim+json' },
    body: body && JSON.stringify(body),
  }).then(async (r) => {
    if (!r.ok) throw new Error(`SCIM ${method} ${path}: ${r.status} ${await r.text()}`);
    return r.status === 204 ? {} : r.json();
  });
}

function receiver() {
  const got = [];
  const server = http.createServer((req, res) => {
    const chunks = [];
    req.on('data', (c) => chunks.push(c));
    req.on('end', () => {
      got.push({ headers: req.headers, body: Buffer.concat(chunks).toString('utf8') });
      res.writeHead(200).end();
    });
  });
  return new Promise((resolve) =>
    server.listen(0, '127.0.0.1', () =>
      resolve({
        got,
        url: `http://127.0.0.1:${server.address().port}/hook`,
        close: () => server.close(),
        async wait(n) {
          const deadline = Date.now() + 20000;
          while (got.length < n) {
            if (Date.now() > deadline) throw new Error(`${got.length} deliveries, expected ${n}`);
            await new Promise((r) => setTimeout(r, 50));
          }
          return got.slice();
        },
      }),
    ),
  );
}

// An endpoint for the receiver: N12 through the SDK, N8 (which has no
// endpoint calls) with the command line.
async function endpoint(hookUrl, events) {
  if (major >= 12) {
    const ep = await workos.webhooks.createWebhookEndpoint({ endpointUrl: hookUrl, events });
    check(ep.status === 'enabled' && ep.secret, 'createWebhookEndpoint');
    const listed = await workos.webhooks.listWebhookEndpoints();
    check(listed.data.some((e) => e.id === ep.id), 'listWebhookEndpoints');
    return { id: ep.id, secret: ep.secret };
  }
  const out = execFileSync(env.ROSTER_BIN, ['--database', env.ROSTER_DATABASE, 'webhook', 'add', hookUrl,
    '--format', 'workos', '--events', events.join(','), '--json'], { encoding: 'utf8' });
  return JSON.parse(out);
}

async function main() {
  // Directories.
  const dirs = await bothOrders((o) => ds.listDirectories(o), 1);
  for (const d of [directory, ...env.ROSTER_OTHER_DIRECTORIES.split(',')]) check(dirs.includes(d), `lists ${d}`);
  const byOrg = await ds.listDirectories({ organizationId: env.ROSTER_ORGANIZATION });
  check(same(byOrg.data.map((d) => d.id), [directory]), 'listDirectories({organizationId})');
  const d = await ds.getDirectory(byId(directory));
  check(d.id === directory && d.organizationId === env.ROSTER_ORGANIZATION, 'getDirectory');
  check(d.state === 'active' && d.type.endsWith('scim v2.0'), 'getDirectory: state linked reads active');

  // Users with their groups.
  const listed = await bothOrders((o) => ds.listUsers(o), 2, { directory });
  // Other checks' webhook users join the directory too.
  check(Object.values(users).every((id) => listed.includes(id)), 'listUsers({directory})');
  const all = await ds.listUsers({ directory, limit: 100 });
  const grace = all.data.find((u) => u.id === users.grace);
  check(same(sorted(grace.groups.map((g) => g.id)), sorted([groups.engineering, groups.research])), 'listUsers carries groups');
  check(grace.email === 'grace@example.com' && grace.firstName === 'Grace' && grace.idpId === 'ext-grace',
    'user email, names, idpId');
  const inEng = await bothOrders((o) => ds.listUsers(o), 2, { group: groups.engineering });
  check(same(sorted(inEng), sorted([users.ada, users.alan, users.grace])), 'listUsers({group})');
  const u = await ds.getUser(byId(users.edsger));
  check(u.lastName === 'Dijkstra' && same(u.groups.map((g) => g.id), [groups.research]), 'getUser');

  // Groups.
  const gs = await bothOrders((o) => ds.listGroups(o), 1, { directory });
  check(same(sorted(gs), sorted(Object.values(groups))), 'listGroups({directory})');
  const ofGrace = await bothOrders((o) => ds.listGroups(o), 1, { user: users.grace });
  check(same(sorted(ofGrace), sorted([groups.engineering, groups.research])), 'listGroups({user})');
  const g = await ds.getGroup(byId(groups.research));
  check(g.name === 'research' && g.directoryId === directory, 'getGroup');

  if (major >= 12) {
    // The directory-scoped routes N12 adds.
    const inDir = await bothOrders((o) => ds.listDirectoryUsers(o), 2, { directoryId: directory });
    check(Object.values(users).every((id) => inDir.includes(id)), 'listDirectoryUsers');
    const r = await ds.listDirectoryUsers({ directoryId: directory, group: groups.research });
    check(same(sorted(r.data.map((x) => x.id)), sorted([users.grace, users.edsger])), 'listDirectoryUsers({group})');
    const one = await ds.getDirectoryUser({ directoryId: directory, userId: users.ada });
    check(one.id === users.ada && one.email === 'ada@example.com', 'getDirectoryUser');
    const dg = await bothOrders((o) => ds.listDirectoryGroups(o), 1, { directoryId: directory });
    check(same(sorted(dg), sorted(Object.values(groups))), 'listDirectoryGroups');
    const og = await ds.getDirectoryGroup({ directoryId: directory, groupId: groups.engineering });
    check(og.name === 'engineering', 'getDirectoryGroup');
  }

  await notFound(() => ds.getUser(byId('no-such-user')), 'getUser of an unknown id');
  await notFound(() => ds.getGroup(byId('no-such-group')), 'getGroup of an unknown id');
  await notFound(() => ds.getDirectory(byId('no-such-directory')), 'getDirectory of an unknown id');

  // Events by type, polled with after.
  const seen = [];
  let after;
  for (;;) {
    const page = await workos.events.listEvents({ events: ['dsync.user.created'], limit: 2, after });
    if (page.data.length === 0) break;
    seen.push(...page.data);
    after = page.listMetadata.after;
  }
  check(seen.every((e) => e.event === 'dsync.user.created'), 'listEvents: only the asked type');
  const mine = seen.filter((e) => e.data.directoryId === directory).map((e) => e.data.id);
  check(Object.values(users).every((id) => mine.includes(id)), 'listEvents: dsync.user.created per user');

  // Webhooks verified with constructEvent.
  const hook = await receiver();
  try {
    const ep = await endpoint(hook.url, ['dsync.user.created', 'dsync.group.user_added']);
    const created = await scim('POST', '/Users', {
      schemas: ['urn:ietf:params:scim:schemas:core:2.0:User'],
      userName: `node${major}-hook@example.com`,
      externalId: `ext-node${major}-hook`,
      name: { givenName: 'Node', familyName: `Hook ${major}` },
      emails: [{ value: `node${major}-hook@example.com`, primary: true }],
    });
    await scim('PATCH', `/Groups/${groups.hooks}`, {
      schemas: ['urn:ietf:params:scim:api:messages:2.0:PatchOp'],
      Operations: [{ op: 'add', path: 'members', value: [{ value: created.id }] }],
    });
    const got = await hook.wait(2);
    const events = [];
    for (const { headers, body } of got) {
      // A parsed body is what an express.json() app passes; N8 always re-stringifies it.
      const parsed = await workos.webhooks.constructEvent({
        payload: JSON.parse(body),
        sigHeader: headers['workos-signature'],
        secret: ep.secret,
      });
      check(JSON.stringify(JSON.parse(body)) === body, 'a delivery survives JSON.stringify(JSON.parse(body))');
      if (major >= 12) {
        const raw = await workos.webhooks.constructEvent({ payload: body, sigHeader: headers['workos-signature'], secret: ep.secret });
        check(raw.id === parsed.id, 'constructEvent over the raw body');
      }
      events.push(parsed);
    }
    // The user and the group are different resources, so their events may
    // arrive in either order; event ids sort in commit order.
    events.sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
    check(same(events.map((e) => e.event), ['dsync.user.created', 'dsync.group.user_added']), 'both deliveries, verified');
    check(events[0].data.id === created.id && events[1].data.user.id === created.id
      && events[1].data.group.id === groups.hooks, 'webhook payloads');
    try {
      await workos.webhooks.constructEvent({ payload: got[0].body + ' ', sigHeader: got[0].headers['workos-signature'], secret: 'wrong' });
      check(false, 'constructEvent refuses a wrong secret');
    } catch (e) {
      check(e.name === 'SignatureVerificationException', `constructEvent refuses a wrong secret (${e.name})`);
    }
    if (major >= 12) {
      const off = await workos.webhooks.updateWebhookEndpoint({ id: ep.id, status: 'disabled' });
      check(off.status === 'disabled', 'updateWebhookEndpoint');
      await workos.webhooks.deleteWebhookEndpoint({ id: ep.id });
      const left = await workos.webhooks.listWebhookEndpoints();
      check(!left.data.some((e) => e.id === ep.id), 'deleteWebhookEndpoint');
    }
  } finally {
    hook.close();
  }

  const scratch = env.ROSTER_SCRATCH_DIRECTORY;
  await ds.deleteDirectory(byId(scratch));
  await notFound(() => ds.getDirectory(byId(scratch)), 'a deleted directory');

  console.log(`workos-sdk node ${major}: ${checks} checks passed`);
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
