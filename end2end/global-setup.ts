// `cargo leptos end-to-end` starts the tests without waiting for the server: poll it first.
import type { FullConfig } from '@playwright/test';

export default async function globalSetup(config: FullConfig) {
  const baseURL = (config.projects[0]?.use?.baseURL as string | undefined) ?? 'http://127.0.0.1:3000';
  const deadline = Date.now() + Number(process.env.SERVER_WAIT_MS ?? 180_000);
  let last = '';
  while (Date.now() < deadline) {
    try {
      const res = await fetch(baseURL + '/', { redirect: 'manual' });
      if (res.status === 200) return;
      last = `HTTP ${res.status}`;
    } catch (e) {
      last = String(e);
    }
    await new Promise((r) => setTimeout(r, 500));
  }
  throw new Error(`server at ${baseURL} did not come up: ${last}`);
}
