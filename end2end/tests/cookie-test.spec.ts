import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { chromium, expect, test, type BrowserContext } from '@playwright/test';
import { launchOptions } from '../playwright.config';
import { expectExpiresIn, expectSessionCookie, ready, sessionCookie, TWO_WEEKS } from './helpers';

test('test cookie: set on /test-session/, passes on /test-delete/, then is gone', async ({ page, context }) => {
  const res = await page.goto('/test-session/');
  // The route renders async, so the Set-Cookie of a session written during SSR is in the head.
  expect(await res?.headerValue('set-cookie')).toMatch(/^sessionid=[a-z0-9]{32};/);
  await expect(page).toHaveTitle('Test session cookie · Sesame');
  await expect(page.getByTestId('output')).toHaveText('Testing session cookie');
  const cookie = await expectSessionCookie(context);
  expectExpiresIn(cookie, TWO_WEEKS);

  await page.getByTestId('check-link').click();
  await expect(page).toHaveURL(/\/test-delete\/$/);
  await expect(page.getByTestId('output')).toHaveText('Cookie test passed');
  await expect(page).toHaveTitle('Cookie test result · Sesame');

  // delete_test_cookie() ran: a second check fails.
  await page.reload();
  await expect(page.getByTestId('output')).toHaveText('Cookie test failed');
});

test('/test-delete/ without /test-session/ first fails', async ({ page, context }) => {
  await page.goto('/test-delete/');
  await expect(page.getByTestId('output')).toHaveText('Cookie test failed');
  expect(await sessionCookie(context)).toBeUndefined();
});

test('Set-Cookie of an SSR session write arrives in the response head', async ({ request }) => {
  const res = await request.get('/test-session/', { headers: { accept: 'text/html' } });
  expect(res.status()).toBe(200);
  const setCookie = res.headersArray().filter((h) => h.name.toLowerCase() === 'set-cookie');
  expect(setCookie).toHaveLength(1);
  expect(setCookie[0].value).toMatch(/^sessionid=[a-z0-9]{32}; /);
  expect(setCookie[0].value).toMatch(/HttpOnly/i);
  expect(setCookie[0].value).toMatch(/SameSite=Lax/i);
  expect(setCookie[0].value).toMatch(/Max-Age=1209600/);
  expect(res.headers()['vary']).toMatch(/cookie/i);
});

test('the island runs the test in place', async ({ page, javaScriptEnabled }) => {
  test.skip(!javaScriptEnabled, 'the island needs JavaScript; without it the form goes to /test-delete/');
  await page.goto('/test-session/');
  await ready(page, 'cookie-test', true);
  await page.getByRole('button', { name: 'Run cookie test' }).click();
  await expect(page.getByTestId('cookie-test-result')).toHaveText('Cookie test passed: your browser keeps cookies.');
  await expect(page).toHaveURL(/\/test-session\/$/); // no navigation
});

test('without JavaScript the island form checks on /test-delete/', async ({ page, javaScriptEnabled }) => {
  test.skip(javaScriptEnabled, 'covered by the in-place test');
  await page.goto('/test-session/');
  await page.getByRole('button', { name: 'Run cookie test' }).click();
  await expect(page).toHaveURL(/\/test-delete\/\??$/); // a GET form with no fields adds a bare `?`
  await expect(page.getByTestId('output')).toHaveText('Cookie test passed');
});

/** A real Chromium profile whose content settings block all cookies. */
async function blockingContext(javaScriptEnabled: boolean): Promise<{ context: BrowserContext; dir: string }> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sesame-nocookies-'));
  fs.mkdirSync(path.join(dir, 'Default'));
  fs.writeFileSync(
    path.join(dir, 'Default', 'Preferences'),
    JSON.stringify({ profile: { default_content_setting_values: { cookies: 2 } } }),
  );
  const context = await chromium.launchPersistentContext(dir, {
    ...launchOptions,
    baseURL: test.info().project.use.baseURL,
    javaScriptEnabled,
  });
  return { context, dir };
}

test('with cookies blocked the test fails and says how to allow them', async ({ javaScriptEnabled }) => {
  const { context, dir } = await blockingContext(javaScriptEnabled);
  try {
    const page = context.pages()[0] ?? (await context.newPage());
    await page.goto('/test-session/');
    await expect(page.getByTestId('output')).toHaveText('Testing session cookie');
    if (javaScriptEnabled) {
      await ready(page, 'cookie-test', true);
      await page.getByRole('button', { name: 'Run cookie test' }).click();
      await expect(page.getByTestId('cookie-test-result')).toContainText(
        'Cookie test failed: your browser blocks cookies for this site.',
      );
      await expect(page.getByTestId('cookie-test-result').getByTestId('allow-cookies-hint')).toBeVisible();
    } else {
      await page.goto('/test-delete/');
      await expect(page.getByTestId('output')).toHaveText('Cookie test failed');
      await expect(page.getByTestId('allow-cookies-hint')).toBeVisible();
    }
    expect(await sessionCookie(context)).toBeUndefined();
  } finally {
    await context.close();
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
