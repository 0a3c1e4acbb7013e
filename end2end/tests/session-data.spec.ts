import { expect, test, type Page } from '@playwright/test';
import { expectSessionCookie, ready, sessionCookie } from './helpers';

test('save, access and delete session data as in the tutorial', async ({ page, context }) => {
  await page.goto('/access-session-data/');
  await expect(page).toHaveTitle('Access session data · Sesame');
  await expect(page.getByTestId('output')).toHaveText('No session data');

  await page.goto('/save-session-data/');
  await expect(page).toHaveTitle('Save session data · Sesame');
  await expect(page.getByTestId('output')).toHaveText('Session Data Saved');
  const first = await expectSessionCookie(context);

  await page.goto('/access-session-data/');
  const output = page.getByTestId('output');
  await expect(output).toContainText('Id : 1');
  await expect(output).toContainText('Name : root');
  await expect(output).toContainText('Password : rootpass');
  expect((await output.innerHTML()).match(/<br>/g)).toHaveLength(3);

  // Saving again reuses the session (and its cookie): no new key.
  await page.goto('/save-session-data/');
  expect((await expectSessionCookie(context)).value).toBe(first.value);

  await page.goto('/delete-session-data/');
  await expect(page).toHaveTitle('Delete session data · Sesame');
  await expect(page.getByTestId('output')).toHaveText('Session Data cleared');
  await page.goto('/access-session-data/');
  await expect(page.getByTestId('output')).toHaveText('No session data');
  // The session lives on (it holds the panel's CSRF secret), under the same key.
  expect((await expectSessionCookie(context)).value).toBe(first.value);

  await page.goto('/save-session-data/');
  expect((await expectSessionCookie(context)).value).toBe(first.value);
});

/** The panel's state for key `key`: its JSON text, or null when absent. */
async function valueOf(page: Page, key: string): Promise<string | null> {
  const row = page.getByTestId('session-panel').locator(`tr[data-key="${key}"]`);
  if ((await row.count()) === 0) return null;
  return (await row.locator('td').nth(1).innerText()).trim();
}

/** Where the outcome of a panel action is reported: in place (JS) or as a flash message (no JS). */
function outcome(page: Page, javaScriptEnabled: boolean) {
  return javaScriptEnabled ? page.getByTestId('panel-note') : page.locator('.messages');
}

test('the panel adds, changes and deletes keys', async ({ page, javaScriptEnabled }) => {
  await page.goto('/access-session-data/');
  await ready(page, 'session-panel', javaScriptEnabled);
  const panel = page.getByTestId('session-panel');

  await panel.getByTestId('key-input').fill('color');
  await panel.getByTestId('value-input').fill('blue');
  await panel.getByTestId('set-button').click();
  await expect(outcome(page, javaScriptEnabled)).toContainText('Added “color” = "blue".');
  await expect.poll(() => valueOf(page, 'color')).toBe('"blue"');

  await page.getByTestId('session-panel').getByTestId('key-input').fill('color');
  await page.getByTestId('session-panel').getByTestId('value-input').fill('{"r": 1, "g": [2, 3]}');
  await page.getByTestId('session-panel').getByTestId('set-button').click();
  await expect(outcome(page, javaScriptEnabled)).toContainText('Changed “color”');
  await expect.poll(() => valueOf(page, 'color')).toBe('{"r":1,"g":[2,3]}');

  // It is in the store, not just on screen.
  await page.reload();
  await ready(page, 'session-panel', javaScriptEnabled);
  expect(await valueOf(page, 'color')).toBe('{"r":1,"g":[2,3]}');

  await page.getByTestId('session-panel').getByTestId('delete-color').click();
  await expect(outcome(page, javaScriptEnabled)).toContainText('Deleted “color”.');
  await expect.poll(() => valueOf(page, 'color')).toBeNull();
  await page.reload();
  expect(await valueOf(page, 'color')).toBeNull();
});

test('the panel refuses framework keys', async ({ page, javaScriptEnabled }) => {
  await page.goto('/access-session-data/');
  await ready(page, 'session-panel', javaScriptEnabled);
  const panel = page.getByTestId('session-panel');
  await panel.getByTestId('key-input').fill('_csrftoken');
  await panel.getByTestId('value-input').fill('x');
  await panel.getByTestId('set-button').click();
  await expect(outcome(page, javaScriptEnabled)).toContainText('belong to the framework');
});

test('a nested change is saved only after marking the session modified', async ({ page, javaScriptEnabled }) => {
  await page.goto('/access-session-data/');
  await ready(page, 'session-panel', javaScriptEnabled);

  await page.getByTestId('nested-create').click();
  await expect(outcome(page, javaScriptEnabled)).toContainText('saved');
  await expect.poll(() => valueOf(page, 'prefs')).toBe('{"clicks":0}');

  await page.getByTestId('nested-change').click();
  await expect(outcome(page, javaScriptEnabled)).toContainText('NOT saved');
  await page.reload();
  await ready(page, 'session-panel', javaScriptEnabled);
  expect(await valueOf(page, 'prefs')).toBe('{"clicks":0}');

  await page.getByTestId('nested-change-modified').click();
  await expect(outcome(page, javaScriptEnabled)).toContainText('session.modified = True: saved');
  await page.reload();
  await ready(page, 'session-panel', javaScriptEnabled);
  expect(await valueOf(page, 'prefs')).toBe('{"clicks":1}');
});

test('a fresh visitor gets a session only when a page needs one', async ({ page, context }) => {
  await page.goto('/delete-session-data/');
  await expect(page.getByTestId('output')).toHaveText('Session Data cleared');
  expect(await sessionCookie(context)).toBeUndefined();
});
