/** A few Prometheus metrics in the text exposition format (version 0.0.4). */
const BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60];

function labelText(labels: Record<string, string>): string {
  const parts = Object.entries(labels).map(
    ([k, v]) => `${k}="${v.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n')}"`,
  );
  return parts.length ? `{${parts.join(',')}}` : '';
}

export class Metrics {
  private readonly requests = new Map<string, { labels: Record<string, string>; value: number }>();
  private readonly durations = new Map<
    string,
    { labels: Record<string, string>; buckets: number[]; sum: number; count: number }
  >();
  bytesIn = 0;
  bytesOut = 0;
  authFailures = 0;
  private readonly gauges = new Map<string, { help: string; read: () => number }>();

  observeRequest(
    method: string,
    route: string,
    status: number,
    seconds: number,
    bytesIn: number,
    bytesOut: number,
  ): void {
    const labels = { method, route, code: String(status) };
    const key = labelText(labels);
    const r = this.requests.get(key) ?? { labels, value: 0 };
    r.value++;
    this.requests.set(key, r);
    const dl = { route };
    const dk = labelText(dl);
    const d = this.durations.get(dk) ?? { labels: dl, buckets: BUCKETS.map(() => 0), sum: 0, count: 0 };
    BUCKETS.forEach((b, i) => {
      if (seconds <= b) d.buckets[i] = (d.buckets[i] ?? 0) + 1;
    });
    d.sum += seconds;
    d.count++;
    this.durations.set(dk, d);
    this.bytesIn += bytesIn;
    this.bytesOut += bytesOut;
  }

  gauge(name: string, help: string, read: () => number): void {
    this.gauges.set(name, { help, read });
  }

  render(): string {
    const out: string[] = [];
    out.push(
      '# HELP regctl_http_requests_total HTTP requests by method, route and status.',
      '# TYPE regctl_http_requests_total counter',
    );
    for (const r of this.requests.values()) out.push(`regctl_http_requests_total${labelText(r.labels)} ${r.value}`);
    out.push(
      '# HELP regctl_http_request_duration_seconds Request duration.',
      '# TYPE regctl_http_request_duration_seconds histogram',
    );
    for (const d of this.durations.values()) {
      BUCKETS.forEach((b, i) =>
        out.push(
          `regctl_http_request_duration_seconds_bucket${labelText({ ...d.labels, le: String(b) })} ${d.buckets[i]}`,
        ),
      );
      out.push(`regctl_http_request_duration_seconds_bucket${labelText({ ...d.labels, le: '+Inf' })} ${d.count}`);
      out.push(`regctl_http_request_duration_seconds_sum${labelText(d.labels)} ${d.sum}`);
      out.push(`regctl_http_request_duration_seconds_count${labelText(d.labels)} ${d.count}`);
    }
    out.push(
      '# HELP regctl_http_received_bytes_total Bytes received.',
      '# TYPE regctl_http_received_bytes_total counter',
      `regctl_http_received_bytes_total ${this.bytesIn}`,
    );
    out.push(
      '# HELP regctl_http_sent_bytes_total Bytes sent.',
      '# TYPE regctl_http_sent_bytes_total counter',
      `regctl_http_sent_bytes_total ${this.bytesOut}`,
    );
    out.push(
      '# HELP regctl_auth_failures_total Failed authentications.',
      '# TYPE regctl_auth_failures_total counter',
      `regctl_auth_failures_total ${this.authFailures}`,
    );
    for (const [name, g] of this.gauges)
      out.push(`# HELP ${name} ${g.help}`, `# TYPE ${name} gauge`, `${name} ${g.read()}`);
    return out.join('\n') + '\n';
  }
}
