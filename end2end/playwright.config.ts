import { defineConfig } from '@playwright/test';

// The app under test: started by `cargo leptos end-to-end` (or scripts/test.sh), or already
// running (BASE_URL). global-setup.ts waits until it answers.
export const baseURL = process.env.BASE_URL ?? 'http://127.0.0.1:3000';

// Debian's Chromium, never a downloaded browser (`npx playwright install` is not used here).
export const launchOptions = {
  executablePath: process.env.CHROMIUM ?? '/usr/bin/chromium',
  args: [
    '--no-sandbox',
    '--disable-gpu',
    '--disable-quic',
    '--no-first-run',
    '--disable-background-networking',
    '--disable-component-update',
    '--disable-sync',
  ],
};

export default defineConfig({
  testDir: './tests',
  globalSetup: './global-setup.ts',
  timeout: 30_000,
  expect: { timeout: 10_000 },
  fullyParallel: true,
  workers: process.env.PW_WORKERS ? Number(process.env.PW_WORKERS) : 2,
  forbidOnly: !!process.env.CI,
  // CI runs on 2 shared cores right after the release build; one retry there absorbs a timeout
  // under load. A test that needed it is still listed as flaky in the report.
  retries: process.env.CI ? 1 : 0,
  reporter: [['list'], ['html', { open: 'never' }]],
  use: {
    baseURL,
    launchOptions,
    trace: 'retain-on-failure',
  },
  // Every spec runs twice: hydrated islands calling server functions, and plain server-rendered
  // forms with redirects.
  projects: [
    { name: 'js', use: { javaScriptEnabled: true } },
    { name: 'no-js', use: { javaScriptEnabled: false } },
  ],
});
