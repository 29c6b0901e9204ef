// Scenarios the C# tests drive through the unmodified e2b SDK. Usage: node scenarios.mjs NAME 'JSON-ARGS'.
// Each prints one JSON line (its findings) on stdout; the tests assert on it. E2B_API_URL,
// E2B_SANDBOX_URL and E2B_API_KEY come from the environment, as for any E2B program.
import { Sandbox, CommandExitError, SandboxNotFoundError, AuthenticationError } from 'e2b'

const [name, raw] = process.argv.slice(2)
const args = raw ? JSON.parse(raw) : {}
const long = { requestTimeoutMs: 3_600_000 }

async function caught(fn) {
  try { return { ok: await fn() } } catch (e) { return { error: e?.constructor?.name, message: String(e?.message ?? e) } }
}

const scenarios = {
  async create() {
    const sbx = await Sandbox.create(args.template ?? 'base', { metadata: args.metadata, envs: args.envs,
      timeoutMs: args.timeoutMs, lifecycle: args.autoPause ? { onTimeout: 'pause' } : undefined, ...long })
    return { sandboxId: sbx.sandboxId }
  },

  async commands() {
    const sbx = await Sandbox.connect(args.id, long)
    const out = []
    const env = await sbx.commands.run('echo "$FOO" "$BAR"', { envs: { BAR: 'per-call' } })
    const who = await sbx.commands.run('whoami; pwd')
    const cwd = await sbx.commands.run('pwd', { cwd: '/tmp' })
    const root = await sbx.commands.run('whoami', { user: 'root' })
    const streamed = []
    const split = await sbx.commands.run('echo out; echo err >&2', { onStdout: d => streamed.push(['o', d]), onStderr: d => streamed.push(['e', d]) })
    const fail = await caught(() => sbx.commands.run('exit 3'))
    const py = await sbx.commands.run('python3 -c "print(6*7)"')
    const bg = await caught(() => sbx.commands.run('sleep 1', { background: true, stdin: true }))
    const slow = await caught(() => sbx.commands.run('sleep 30', { timeoutMs: 2000 }))
    out.push()
    return { env: env.stdout, who: who.stdout, cwd: cwd.stdout, root: root.stdout, split: { stdout: split.stdout, stderr: split.stderr },
      streamed, fail: { error: fail.error, message: fail.message }, py: py.stdout, bgStdin: bg.error ?? 'none', slow: slow.error ?? 'none' }
  },

  async files() {
    const sbx = await Sandbox.connect(args.id, long)
    const w = await sbx.files.write('notes/hello.txt', 'hello e2b')
    const text = await sbx.files.read('notes/hello.txt')
    const bytes = new Uint8Array([0, 1, 2, 250, 255])
    await sbx.files.write('/tmp/bin.dat', bytes.buffer)
    const back = await sbx.files.read('/tmp/bin.dat', { format: 'bytes' })
    const multi = await sbx.files.write([{ path: '/tmp/m/a.txt', data: 'A' }, { path: '/tmp/m/b.txt', data: 'B' }])
    const a = await sbx.files.read('/tmp/m/a.txt')
    const b = await sbx.files.read('/tmp/m/b.txt')
    const owner = await sbx.commands.run('stat -c %U /home/user/notes/hello.txt')
    const missing = await caught(() => sbx.files.read('/nope/nothing'))
    const asRoot = await sbx.files.write('/root/r.txt', 'r', { user: 'root' })
    return { written: w, text, bytes: Array.from(back), multi, a, b, owner: owner.stdout.trim(), missing: missing.error, asRoot }
  },

  async info() {
    const info = await Sandbox.getInfo(args.id, long)
    const sbx = await Sandbox.connect(args.id, long)
    return { info, running: await sbx.isRunning() }
  },

  async list() {
    const pages = []
    const paginator = Sandbox.list({ query: { metadata: args.metadata, state: args.state }, limit: args.limit, ...long })
    while (paginator.hasNext) pages.push((await paginator.nextItems()).map(s => ({ id: s.sandboxId, state: s.state, metadata: s.metadata })))
    return { pages }
  },

  async expire() {
    const sbx = await Sandbox.connect(args.id, long)
    await sbx.setTimeout(args.timeoutMs)
    await new Promise(r => setTimeout(r, args.waitMs))
    return { running: await sbx.isRunning(), info: (await caught(() => Sandbox.getInfo(args.id, long))).error }
  },

  async autoPause() {
    const sbx = await Sandbox.create({ timeoutMs: args.timeoutMs, lifecycle: { onTimeout: 'pause' }, metadata: { suite: 'autopause' }, ...long })
    await sbx.files.write('/tmp/auto.txt', 'paused by its deadline')
    await new Promise(r => setTimeout(r, args.waitMs))
    const state = (await Sandbox.getInfo(sbx.sandboxId, long)).state
    const resumed = await Sandbox.connect(sbx.sandboxId, long)
    const kept = await resumed.files.read('/tmp/auto.txt')
    await resumed.kill()
    return { state, lifecycle: (await caught(() => Sandbox.getInfo(sbx.sandboxId, long))).error, kept }
  },

  async pauseConnect() {
    const sbx = await Sandbox.connect(args.id, long)
    await sbx.files.write('/tmp/kept.txt', 'kept across pause')
    const paused = await sbx.pause()
    const again = await sbx.pause()
    const state = (await Sandbox.getInfo(args.id, long)).state
    const whilePaused = await sbx.isRunning()
    const resumed = await Sandbox.connect(args.id, long)
    return { paused, again, state, whilePaused, running: await resumed.isRunning(),
      kept: await resumed.files.read('/tmp/kept.txt'), after: (await Sandbox.getInfo(args.id, long)).state }
  },

  async fork() {
    const sbx = await Sandbox.connect(args.id, long)
    await sbx.files.write('/tmp/fork.txt', 'before')
    const forks = await sbx.fork({ count: 1, ...long })
    const child = forks[0]
    await child.files.write('/tmp/fork.txt', 'child')
    await sbx.files.write('/tmp/fork.txt', 'parent')
    const result = { childId: child.sandboxId, child: await child.files.read('/tmp/fork.txt'), parent: await sbx.files.read('/tmp/fork.txt'),
      childMetadata: (await Sandbox.getInfo(child.sandboxId, long)).metadata }
    await child.kill()
    return result
  },

  async snapshot() {
    const sbx = await Sandbox.connect(args.id, long)
    await sbx.files.write('/tmp/snap.txt', 'in the snapshot')
    const snap = await sbx.createSnapshot({ name: args.name, ...long })
    const listed = []
    for (const p = Sandbox.listSnapshots({ sandboxId: args.id, ...long }); p.hasNext;) listed.push(...(await p.nextItems()))
    // Bough keeps a snapshot while the sandbox it was taken from lives (that sandbox's disk stands on
    // it): kill the source first, which also shows the snapshot outlives it.
    await sbx.kill()
    const from = await Sandbox.create(snap.snapshotId, long)
    const content = await from.files.read('/tmp/snap.txt')
    const templateId = (await Sandbox.getInfo(from.sandboxId, long)).templateId
    await from.kill()
    const deleted = await Sandbox.deleteSnapshot(snap.snapshotId, long)
    const deletedAgain = await Sandbox.deleteSnapshot(snap.snapshotId, long)
    return { snap, listed: listed.map(s => s.snapshotId), content, templateId, deleted, deletedAgain }
  },

  async kill() {
    const sbx = await Sandbox.connect(args.id, long)
    const first = await sbx.kill()
    const second = await Sandbox.kill(args.id, long)
    return { first, second, running: await sbx.isRunning(), info: (await caught(() => Sandbox.getInfo(args.id, long))).error }
  },

  async wrongKey() {
    const list = await caught(() => Sandbox.list({ apiKey: 'not-the-token', ...long }).nextItems())
    const create = await caught(() => Sandbox.create({ apiKey: 'not-the-token', ...long }))
    return { list: list.error, create: create.error }
  },

  async metrics() {
    const sbx = await Sandbox.connect(args.id, long)
    return { metrics: await sbx.getMetrics(long) }
  },

  // getHost(port) names the guest port; a plain node:http GET of that name reaches the guest's python server.
  // Node asks the system resolver, which on a host without nss-myhostname knows no *.localhost; browsers and
  // curl map those names to loopback themselves (RFC 6761), and so does this lookup. Other names resolve as usual.
  async host() {
    const http = await import('node:http')
    const dns = await import('node:dns')
    const sbx = await Sandbox.connect(args.id, long)
    await sbx.files.write('/tmp/www/index.html', args.content)
    await sbx.commands.run(`cd /tmp/www && (setsid python3 -m http.server ${args.port} >/dev/null 2>&1 &)`)
    const host = sbx.getHost(args.port)
    const lookup = (hostname, opts, cb) => !hostname.endsWith('.localhost') ? dns.lookup(hostname, opts, cb)
      : opts.all ? cb(null, [{ address: '127.0.0.1', family: 4 }]) : cb(null, '127.0.0.1', 4)
    const get = url => new Promise((resolve, reject) => http.get(url, { lookup }, res => {
      let body = ''
      res.setEncoding('utf8').on('data', d => { body += d }).on('end', () => resolve({ status: res.statusCode, body }))
    }).on('error', reject))
    let answer = {}
    for (let i = 0; i < 120 && answer.status !== 200; i++) {
      answer = await get(`http://${host}/index.html`).catch(e => ({ status: String(e) }))
      if (answer.status !== 200) await new Promise(r => setTimeout(r, 250))
    }
    return { host, ...answer }
  },
}

const fn = scenarios[name]
if (!fn) { console.error(`unknown scenario ${name}`); process.exit(2) }
try {
  console.log(JSON.stringify(await fn()))
} catch (e) {
  console.log(JSON.stringify({ failed: e?.constructor?.name, message: String(e?.message ?? e), stack: e?.stack }))
  process.exit(1)
}
