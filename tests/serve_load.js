// Load generator for `shardlm serve`: CLIENTS concurrent clients, each
// sending REQUESTS completions of MAX_TOKENS tokens one after another
// (loopback, Node's built-in fetch). Prints one JSON line: completed,
// failed, wall seconds, requests/s, tokens/s, latency p50/p95/max in ms.
// usage: node serve_load.js BASE_URL CLIENTS REQUESTS MAX_TOKENS
const [, , base, clients, requests, maxTokens] = process.argv.map((v, i) => (i > 2 ? +v : v));

function percentile(sorted, p) {
  if (sorted.length === 0) return 0;
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))];
}

async function client(id, latencies, counts) {
  for (let r = 0; r < requests; r++) {
    const start = performance.now();
    try {
      const res = await fetch(`${base}/v1/completions`, {
        method: 'POST',
        headers: { 'Content-Type': 'application/json' },
        body: JSON.stringify({ prompt: `Once upon a time ${id}`, max_tokens: maxTokens,
                               temperature: 0.8, seed: id * 1000 + r }),
      });
      const body = await res.json();
      if (res.status !== 200) throw new Error(`HTTP ${res.status}: ${JSON.stringify(body)}`);
      counts.tokens += body.usage.completion_tokens;
      counts.completed++;
      latencies.push(performance.now() - start);
    } catch (e) {
      counts.failed++;
      if (!counts.error) counts.error = String(e);
    }
  }
}

async function main() {
  const latencies = [];
  const counts = { completed: 0, failed: 0, tokens: 0, error: null };
  const start = performance.now();
  await Promise.all([...Array(clients).keys()].map((i) => client(i, latencies, counts)));
  const seconds = (performance.now() - start) / 1000;
  latencies.sort((a, b) => a - b);
  console.log(JSON.stringify({
    clients, completed: counts.completed, failed: counts.failed, error: counts.error,
    seconds: +seconds.toFixed(3), requests_per_s: +(counts.completed / seconds).toFixed(1),
    tokens_per_s: +(counts.tokens / seconds).toFixed(1),
    p50_ms: +percentile(latencies, 50).toFixed(1), p95_ms: +percentile(latencies, 95).toFixed(1),
    max_ms: +(latencies[latencies.length - 1] || 0).toFixed(1),
  }));
}

main();
