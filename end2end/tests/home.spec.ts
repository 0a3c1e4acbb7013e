import { expect, test } from '@playwright/test';
import { sessionCookie } from './helpers';

test('home lists the tutorial steps and sets no cookie', async ({ page, context }) => {
  const res = await page.goto('/');
  expect(res?.status()).toBe(200);
  await expect(page).toHaveTitle('Django sessions, in Rust · Sesame');
  await expect(page.getByRole('heading', { level: 1 })).toHaveText('Django sessions, in Rust');
  for (const step of ['1. Cookie test', '2. Session data', '3. Expiry', '4. Lousy login']) {
    await expect(page.getByRole('link', { name: step })).toBeVisible();
  }
  // Lazy sessions: a page that only reads (flash messages) never creates one.
  expect(await sessionCookie(context)).toBeUndefined();
});

test('unknown pages are a 404 in the shared layout', async ({ page }) => {
  const res = await page.goto('/no-such-page/');
  expect(res?.status()).toBe(404);
  await expect(page).toHaveTitle('Page not found · Sesame');
  await expect(page.getByRole('link', { name: 'Sesame' })).toBeVisible();
});

test('tutorial URLs without the trailing slash redirect (APPEND_SLASH)', async ({ page }) => {
  await page.goto('/test-session');
  await expect(page).toHaveURL(/\/test-session\/$/);
});

test('favicon is served', async ({ request }) => {
  const res = await request.get('/favicon.ico');
  expect(res.status()).toBe(200);
});
