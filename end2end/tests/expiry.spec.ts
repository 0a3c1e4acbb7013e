import { expect, test, type Page } from '@playwright/test';
import {
  expectBrowserSessionCookie,
  expectExpiresIn,
  expectSessionCookie,
  ready,
  TWO_WEEKS,
} from './helpers';

async function age(page: Page): Promise<number> {
  const text = await page.getByTestId('expiry-age').innerText();
  return Number(text.replace(/[^0-9-]/g, ''));
}

/** With JS the panel updates in place; without, the form posts and the server redirects back. */
async function click(page: Page, testId: string, javaScriptEnabled: boolean, note: string) {
  await page.getByTestId(testId).click();
  if (javaScriptEnabled) {
    await expect(page.getByTestId('panel-note')).toContainText(note);
  } else {
    await expect(page.locator('.messages')).toContainText(note);
  }
}

test('set_expiry: seconds, browser close, default', async ({ page, context, javaScriptEnabled }) => {
  await page.goto('/expiry/');
  await expect(page).toHaveTitle('Session expiry · Sesame');
  await ready(page, 'expiry-panel', javaScriptEnabled);

  // The global policy: two weeks.
  expect(await age(page)).toBe(TWO_WEEKS);
  await expect(page.getByTestId('browser-close')).toHaveText('False');
  await expect(page.getByTestId('stored-expiry')).toContainText('not set');
  expectExpiresIn(await expectSessionCookie(context), TWO_WEEKS);

  // set_expiry(300)
  await page.getByTestId('seconds-input').fill('300');
  await click(page, 'set-seconds', javaScriptEnabled, 'set_expiry(300)');
  await expect(page.getByTestId('stored-expiry')).toHaveText('300');
  expect(await age(page)).toBe(300);
  await expect(page.getByTestId('browser-close')).toHaveText('False');
  expectExpiresIn(await expectSessionCookie(context), 300, 30);

  // set_expiry(0): a browser-session cookie, no Max-Age/Expires.
  await click(page, 'set-browser-close', javaScriptEnabled, 'set_expiry(0)');
  await expect(page.getByTestId('browser-close')).toHaveText('True');
  await expect(page.getByTestId('stored-expiry')).toHaveText('0');
  expectBrowserSessionCookie(await expectSessionCookie(context));

  // set_expiry(None): back to the default.
  await click(page, 'set-default', javaScriptEnabled, 'set_expiry(None)');
  await expect(page.getByTestId('browser-close')).toHaveText('False');
  await expect(page.getByTestId('stored-expiry')).toContainText('not set');
  expect(await age(page)).toBe(TWO_WEEKS);
  expectExpiresIn(await expectSessionCookie(context), TWO_WEEKS);

  // The values survive a reload (they are in the store).
  await page.reload();
  expect(await age(page)).toBe(TWO_WEEKS);
});

test('a bad number of seconds is refused', async ({ page, javaScriptEnabled }) => {
  await page.goto('/expiry/');
  await ready(page, 'expiry-panel', javaScriptEnabled);
  await page.getByTestId('seconds-input').fill('-5');
  await click(page, 'set-seconds', javaScriptEnabled, 'between 1 and');
});
