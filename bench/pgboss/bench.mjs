// pg-boss (npm) on the same PostgreSQL server as litebroker's pg-bench, the
// same workloads, the same JSON lines. usage:
//   node bench/pgboss/bench.mjs --host /socket/dir --user U --database D
//        [--single 2000] [--batched 100000] [--batch 1000] [--claims 4000]
//        [--leases 2000] [--latency 50] [--conns 1,8]
// Workloads: pgboss_send (one job per call), pgboss_insert_batch (--batch jobs
// per insert), pgboss_fetch_complete (fetch one job = a lease, then complete
// it = the ack; pg-boss has no consuming read, so this is both its claim and
// its lease + ack), pgboss_work_latency (send -> handler of work(), which
// polls at its minimum interval, 0.5 s).
import PgBoss from 'pg-boss'

const args = Object.fromEntries(
  process.argv.slice(2).reduce((acc, v, i, a) => (i % 2 ? acc : [...acc, [a[i].replace(/^--/, ''), a[i + 1]]]), [])
)
const num = (k, d) => (args[k] ? parseInt(args[k].replace(/_/g, ''), 10) : d)
const single = num('single', 2000)
const batched = num('batched', 100000)
const batch = num('batch', 1000)
const claims = num('claims', 4000)
const leases = num('leases', 2000)
const latency = num('latency', 50)
const conns = (args.conns || '1,8').split(',').map(Number)

function emit (bench, count, seconds, extra = {}) {
  console.log(JSON.stringify({ bench, count, seconds, per_sec: seconds > 0 ? count / seconds : 0, ...extra }))
}

async function withBoss (max, fn) {
  const boss = new PgBoss({
    host: args.host, user: args.user, database: args.database,
    schema: 'pgbench_pgboss', max, supervise: false, schedule: false, migrate: true
  })
  boss.on('error', e => console.error('pg-boss:', e.message))
  await boss.start()
  try { return await fn(boss) } finally { await boss.stop({ graceful: false, wait: true }) }
}

async function split (c, total, work) {
  const start = process.hrtime.bigint()
  await Promise.all([...Array(c).keys()].map(i => work(Math.floor(total / c) + (i < total % c ? 1 : 0))))
  return Number(process.hrtime.bigint() - start) / 1e9
}

// An empty queue for each phase, as litebroker and the floor get. (Not
// deleteQueue: pg-boss refuses to delete a queue that still has jobs, and an
// earlier version of this script swallowed that error, so its fetches ran on
// a queue still holding every job of the write phases: pg-boss's fetch sorts
// all of a queue's waiting jobs, and it measured 7-10 fetches/s.)
async function fresh (boss) {
  await boss.clearStorage()
  if (!(await boss.getQueue('bench'))) await boss.createQueue('bench')
}

for (const c of conns) {
  await withBoss(c, async boss => {
    await fresh(boss)
    let t = await split(c, single, async n => { for (let i = 0; i < n; i++) await boss.send('bench', { body: 'message' }) })
    emit('pgboss_send', single, t, { conns: c })
    const jobs = [...Array(batch).keys()].map(i => ({ name: 'bench', data: { body: `message ${i}` } }))
    t = await split(c, Math.floor(batched / batch), async n => { for (let i = 0; i < n; i++) await boss.insert(jobs) })
    emit('pgboss_insert_batch', batched, t, { conns: c, batch })
    await fresh(boss)
    for (let i = 0; i < Math.ceil(Math.max(claims, leases) / batch) + 1; i++) await boss.insert(jobs)
    const depth = await boss.getQueueSize('bench')
    // Bounded in time too: pg-boss's fetch reads and sorts every waiting job.
    const deadline = Date.now() + 30000
    let done = 0
    t = await split(c, claims, async n => {
      for (let i = 0; i < n && Date.now() < deadline; i++) {
        const [job] = await boss.fetch('bench')
        if (!job) throw new Error('pg-boss queue ran dry')
        await boss.complete('bench', job.id)
        done++
      }
    })
    emit('pgboss_fetch_complete', done, t, { conns: c, queue_depth: depth, stopped_at_30s: done < claims })
  })
}

await withBoss(4, async boss => {
  await fresh(boss)
  const samples = []
  let sent = 0n
  let resolveOne
  await boss.work('bench', { pollingIntervalSeconds: 0.5 }, async () => {
    samples.push(Number(process.hrtime.bigint() - sent) / 1e6)
    resolveOne()
  })
  for (let i = 0; i < latency; i++) {
    await new Promise(r => setTimeout(r, 3 + (i * 7) % 8))
    const got = new Promise(r => { resolveOne = r })
    await boss.send('bench', { i })
    sent = process.hrtime.bigint()
    await got
  }
  samples.sort((a, b) => a - b)
  const pct = p => samples[Math.round((p / 100) * (samples.length - 1))]
  emit('pgboss_work_latency', samples.length, 0, { p50_ms: pct(50), p99_ms: pct(99), max_ms: pct(100) })
})
