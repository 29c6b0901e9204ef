// Scenarios the C# tests drive through the unmodified e2b SDK. Usage: node scenarios.mjs NAME 'JSON-ARGS'.
// Each prints one JSON line (its findings) on stdout; the tests assert on it. E2B_API_URL,
// E2B_SANDBOX_URL and E2B_API_KEY come from the environment, as for any E2B program.
import { Sandbox, CommandExitError, SandboxNotFoundError, AuthenticationError } from 'e2b'

const [name, raw] = process.argv.slice(2)
const args = raw ? JSON.parse(raw) : {}
const long = { requestTimeoutMs: 3_600_000 }

async function waitFor(cond, ms = 60_000) {
  for (const end = Date.now() + ms; Date.now() < end; await new Promise(r => setTimeout(r, 100))) if (cond()) return true
  return cond()
}

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
    // Streams both ways: a ReadableStream upload (the SDK sends it as a streamed octet-stream body) of
    // 1 MiB in 64 KiB chunks, read back as a stream; and a Blob written, read back as a Blob.
    const chunk = i => new Uint8Array(65_536).map((_, j) => (i * 31 + j) % 251)
    let sent = 0
    const upload = new ReadableStream({ pull(c) { if (sent === 16) c.close(); else c.enqueue(chunk(sent++)) } })
    const streamWritten = await sbx.files.write('/tmp/stream.bin', upload)
    const reader = (await sbx.files.read('/tmp/stream.bin', { format: 'stream' })).getReader()
    const got = []
    for (let r = await reader.read(); !r.done; r = await reader.read()) got.push(r.value)
    const whole = Buffer.concat(got)
    const expected = Buffer.concat(Array.from({ length: 16 }, (_, i) => chunk(i)))
    await sbx.files.write('/tmp/blob.txt', new Blob(['blob-', 'data']))
    const blob = await sbx.files.read('/tmp/blob.txt', { format: 'blob' })
    return { written: w, text, bytes: Array.from(back), multi, a, b, owner: owner.stdout.trim(), missing: missing.error, asRoot,
      stream: { path: streamWritten.path, chunks: got.length, length: whole.length, same: whole.equals(expected) },
      blob: { text: await blob.text(), size: blob.size } }
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
    // Two background processes that must live through the pause: a counter (its count lives only in
    // the shell's memory; it also leaves it in a file) and a stdin reader. Their first handles' streams
    // may end with the pause, so their ends are caught rather than left to reject unheard.
    const counter = await sbx.commands.run('i=0; while :; do i=$((i+1)); echo "n=$i"; echo $i > /tmp/count; sleep 0.3; done',
      { background: true, timeoutMs: 0 })
    const reader = await sbx.commands.run('while read l; do echo "got $l"; done; echo eof', { background: true, stdin: true, timeoutMs: 0 })
    const counterEnd = caught(() => counter.wait())
    const readerEnd = caught(() => reader.wait())
    await reader.sendStdin('before\n')
    const count = async () => Number((await sbx.files.read('/tmp/count')).trim())
    await waitFor(() => counter.stdout.includes('n=3'))
    const beforePause = await count()
    const paused = await sbx.pause()
    const again = await sbx.pause()
    const state = (await Sandbox.getInfo(args.id, long)).state
    const whilePaused = await sbx.isRunning()
    const resumed = await Sandbox.connect(args.id, long)
    const running = await resumed.isRunning()
    const kept = await resumed.files.read('/tmp/kept.txt')
    const after = (await Sandbox.getInfo(args.id, long)).state

    const afterResume = Number((await resumed.files.read('/tmp/count')).trim())
    const listed = (await resumed.commands.list()).map(p => p.pid)
    const counter2 = await resumed.commands.connect(counter.pid, { timeoutMs: 0 })
    const reader2 = await resumed.commands.connect(reader.pid, { timeoutMs: 0 })
    const counter2End = caught(() => counter2.wait())
    // The shell's own count goes on from where it was: a restarted loop would print n=1 again.
    const seen = () => [...counter2.stdout.matchAll(/n=(\d+)/g)].map(m => Number(m[1]))
    const counted = await waitFor(() => seen().some(n => n >= afterResume + 3))
    await resumed.commands.sendStdin(reader.pid, 'after\n')
    const readerSaw = await waitFor(() => reader2.stdout.includes('got after'))
    await reader2.closeStdin()
    const readerDone = await caught(() => reader2.wait())
    const counterKilled = await resumed.commands.kill(counter.pid)
    await counter2End
    const first = { counter: await counterEnd, reader: await readerEnd }
    return { paused, again, state, whilePaused, running, kept, after,
      processes: { pids: [counter.pid, reader.pid], listed, beforePause, afterResume, seen: seen(), counted,
        readerSaw, readerStdout: reader2.stdout, readerExit: readerDone.ok?.exitCode ?? readerDone.error, counterKilled,
        firstHandles: { counter: first.counter.error ?? 'none', reader: first.reader.error ?? 'none' } } }
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

  // process.Process beyond a foreground run: background + stdin, list, a second handle, kill; a PTY.
  async processes() {
    const sbx = await Sandbox.connect(args.id, long)
    const bg = await sbx.commands.run('while read l; do echo "got $l"; done; echo eof', { background: true, stdin: true, timeoutMs: 0 })
    const listedBg = (await sbx.commands.list()).find(p => p.pid === bg.pid) ?? null
    const second = await sbx.commands.connect(bg.pid, { timeoutMs: 0 })
    await bg.sendStdin('one\n')
    await sbx.commands.sendStdin(bg.pid, 'two\n')
    const secondSaw = await waitFor(() => second.stdout.includes('got two'))
    await bg.closeStdin()
    const done = await bg.wait()
    const secondDone = await second.wait()

    const sleeper = await sbx.commands.run('sleep 600', { background: true, timeoutMs: 0 })
    const listedSleeper = (await sbx.commands.list()).some(p => p.pid === sleeper.pid)
    const killed = await sbx.commands.kill(sleeper.pid)
    const killedEnd = await caught(() => sleeper.wait())
    const listedAfterKill = (await sbx.commands.list()).some(p => p.pid === sleeper.pid)
    const killAgain = await sbx.commands.kill(sleeper.pid)
    const connectUnknown = await caught(() => sbx.commands.connect(sleeper.pid))
    return {
      listedBg: listedBg && { cmd: listedBg.cmd, args: listedBg.args },
      secondSaw, stdout: done.stdout, exitCode: done.exitCode, secondStdout: secondDone.stdout,
      listedSleeper, killed, killedEnd: { error: killedEnd.error, message: killedEnd.message }, listedAfterKill, killAgain,
      connectUnknown: connectUnknown.error, pids: [bg.pid, sleeper.pid],
    }
  },

  async pty() {
    const sbx = await Sandbox.connect(args.id, long)
    const chunks = []
    const text = () => Buffer.concat(chunks.map(c => Buffer.from(c))).toString()
    const term = await sbx.pty.create({ cols: 100, rows: 30, onData: d => chunks.push(d), timeoutMs: 0 })
    const input = s => sbx.pty.sendInput(term.pid, new TextEncoder().encode(s))
    await input('echo hi-$((40+2))\n')
    const echoed = await waitFor(() => text().includes('hi-42'))
    await input('stty size\n')
    const size = await waitFor(() => text().includes('30 100'))
    await sbx.pty.resize(term.pid, { cols: 120, rows: 40 })
    await input('stty size\n')
    const resized = await waitFor(() => text().includes('40 120'))
    const listed = (await sbx.commands.list()).some(p => p.pid === term.pid)
    const killed = await sbx.pty.kill(term.pid)
    const end = await caught(() => term.wait())
    return { echoed, size, resized, listed, killed, end: end.error ?? 'none', tail: text().slice(-400) }
  },

  async fsOps() {
    const sbx = await Sandbox.connect(args.id, long)
    const base = args.base
    await sbx.files.write(`${base}/a/b/deep.txt`, 'deep')
    await sbx.files.write(`${base}/top.txt`, 'hello')
    const parentOwners = (await sbx.commands.run(`stat -c %U ${base} ${base}/a ${base}/a/b`)).stdout.trim().split('\n')
    await sbx.commands.run(`ln -s top.txt ${base}/link`) // as user: the parents the write created are theirs
    const names = list => list.map(e => e.path).sort()
    const depth1 = names(await sbx.files.list(base))
    const depth2 = names(await sbx.files.list(base, { depth: 2 }))
    const info = await sbx.files.getInfo(`${base}/top.txt`)
    const dirInfo = await sbx.files.getInfo(base)
    const link = await sbx.files.getInfo(`${base}/link`)
    const exists = await sbx.files.exists(`${base}/top.txt`)
    const missing = await sbx.files.exists(`${base}/nope`)
    const infoMissing = await caught(() => sbx.files.getInfo(`${base}/nope`))
    const made = await sbx.files.makeDir(`${args.rel}/x/y`)
    const madeAgain = await sbx.files.makeDir(`${args.rel}/x/y`)
    const madeOwners = (await sbx.commands.run(`stat -c %U ~/${args.rel} ~/${args.rel}/x/y`)).stdout.trim().split('\n')
    const renamed = await sbx.files.rename(`${base}/top.txt`, `${base}/moved.txt`)
    const oldExists = await sbx.files.exists(`${base}/top.txt`)
    const movedText = await sbx.files.read(`${base}/moved.txt`)
    await sbx.files.remove(`${base}/a`)
    const removedExists = await sbx.files.exists(`${base}/a`)
    const removeMissing = await caught(() => sbx.files.remove(`${base}/a`))
    return {
      depth1, depth2,
      info: { name: info.name, type: info.type, path: info.path, size: info.size, mode: info.mode, permissions: info.permissions,
        owner: info.owner, group: info.group, modified: info.modifiedTime?.toISOString() ?? null },
      dirType: dirInfo.type, link: { type: link.type, target: link.symlinkTarget ?? null },
      parentOwners, exists, missing, infoMissing: infoMissing.error, made, madeAgain, madeOwners,
      renamed: { path: renamed.path, name: renamed.name, type: renamed.type }, oldExists, movedText, removedExists,
      removeMissing: removeMissing.error,
    }
  },

  async watch() {
    const sbx = await Sandbox.connect(args.id, long)
    const dir = args.dir
    await sbx.files.makeDir(`${dir}/sub`)
    const flat = []
    const deep = []
    const w1 = await sbx.files.watchDir(dir, e => flat.push({ name: e.name, type: e.type }), { timeoutMs: 0 })
    const w2 = await sbx.files.watchDir(dir, e => deep.push({ name: e.name, type: e.type }), { recursive: true, timeoutMs: 0 })
    await sbx.files.write(`${dir}/new.txt`, 'x')
    await sbx.files.write(`${dir}/sub/inner.txt`, 'y')
    const sawNew = await waitFor(() => flat.some(e => e.name === 'new.txt' && e.type === 'create'))
    const sawInner = await waitFor(() => deep.some(e => e.name === 'sub/inner.txt' && e.type === 'create'))
    await sbx.files.remove(`${dir}/new.txt`)
    const sawRemove = await waitFor(() => flat.some(e => e.name === 'new.txt' && e.type === 'remove'))
    await w1.stop()
    await w2.stop()
    const missing = await caught(() => sbx.files.watchDir(`${dir}/nope`, () => {}))
    return { sawNew, sawInner, sawRemove, flatInner: flat.some(e => e.name.includes('inner')), missing: missing.error, flat, deep }
  },

  // The polling watcher (E2B's Python SDK uses it; the JS SDK has it only on its generated client, files.rpc).
  async pollWatch() {
    const sbx = await Sandbox.connect(args.id, long)
    const rpc = sbx.files.rpc
    await sbx.files.makeDir(args.dir)
    const { watcherId } = await rpc.createWatcher({ path: args.dir, recursive: false })
    await sbx.files.write(`${args.dir}/polled.txt`, 'p')
    const events = []
    for (const end = Date.now() + 60_000; Date.now() < end && !events.some(e => e.name === 'polled.txt'); await new Promise(r => setTimeout(r, 200)))
      events.push(...(await rpc.getWatcherEvents({ watcherId })).events.map(e => ({ name: e.name, type: e.type })))
    await rpc.removeWatcher({ watcherId })
    const afterRemove = await caught(() => rpc.getWatcherEvents({ watcherId }))
    const unknownDir = await caught(() => rpc.createWatcher({ path: `${args.dir}/nope` }))
    return { watcherId, events, afterRemove: afterRemove.message, unknownDir: unknownDir.message }
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
