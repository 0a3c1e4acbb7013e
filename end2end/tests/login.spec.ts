import { expect, test, type Page } from '@playwright/test';
import { expectSessionCookie, ready, sessionCookie } from './helpers';

async function logIn(page: Page, javaScriptEnabled: boolean, username: string, password: string) {
  await page.goto('/lousy-login/');
  await expect(page).toHaveTitle('Lousy login · Sesame');
  await ready(page, 'login-form', javaScriptEnabled);
  await page.getByTestId('username').fill(username);
  await page.getByTestId('password').fill(password);
  await page.getByTestId('login-button').click();
}

const ERROR = 'Error wrong username/password';

function otherSite(base: string): string {
  const u = new URL(base);
  u.hostname = u.hostname === 'localhost' ? '127.0.0.1' : 'localhost';
  return u.origin;
}

test('a wrong password shows the flash message once', async ({ page, javaScriptEnabled }) => {
  await logIn(page, javaScriptEnabled, 'root', 'wrong');
  await expect(page).toHaveURL(/\/lousy-login\/$/);
  await expect(page.locator('.messages .message.error')).toHaveText(ERROR);
  await page.reload();
  await expect(page.getByTestId('login-form')).toBeVisible();
  await expect(page.locator('.messages')).toHaveCount(0);
});

test('empty input and a wrong user get the same message', async ({ page, javaScriptEnabled }) => {
  await logIn(page, javaScriptEnabled, '', '');
  await expect(page.locator('.messages .message.error')).toHaveText(ERROR);
  await logIn(page, javaScriptEnabled, 'admin', 'pass');
  await expect(page.locator('.messages .message.error')).toHaveText(ERROR);
});

test('login rotates the key, the secret page is guarded, logout flushes', async ({ page, context, javaScriptEnabled }) => {
  // Anonymous: the secret page sends us to the login.
  const guarded = await page.goto('/lousy-secret/');
  await expect(page).toHaveURL(/\/lousy-login\/$/);
  expect(guarded?.request().redirectedFrom()?.url()).toMatch(/\/lousy-secret\/$/);

  await page.goto('/lousy-login/');
  const before = await expectSessionCookie(context); // the login form's CSRF secret made a session
  await logIn(page, javaScriptEnabled, 'root', 'pass');
  await expect(page).toHaveURL(/\/lousy-secret\/$/);
  await expect(page).toHaveTitle('Lousy secret · Sesame');
  await expect(page.getByTestId('output')).toHaveText('Welcome root, you are logged in.');
  const after = await expectSessionCookie(context);
  expect(after.value).not.toBe(before.value); // cycle_key: a new key after login

  // The old key is dead: a browser holding it is anonymous.
  const thief = await context.browser()!.newContext();
  await thief.addCookies([{ ...before, sameSite: 'Lax' }]);
  const thiefPage = await thief.newPage();
  await thiefPage.goto(new URL('/lousy-secret/', page.url()).toString());
  await expect(thiefPage).toHaveURL(/\/lousy-login\/$/);
  await thief.close();

  // Logout flushes: the cookie is deleted and the secret page is guarded again.
  await page.getByTestId('logout-link').click();
  await expect(page).toHaveURL(/\/lousy-logout\/$/);
  await expect(page).toHaveTitle('Logged out · Sesame');
  await expect(page.getByTestId('output')).toHaveText('You are logged out.');
  expect(await sessionCookie(context)).toBeUndefined();

  // Back button: the secret page is not shown from a cache; the server redirects to the login.
  await page.goBack();
  await expect(page).toHaveURL(/\/lousy-login\/$/);
  await expect(page.getByText('Welcome root')).toHaveCount(0);

  await page.goto('/lousy-secret/');
  await expect(page).toHaveURL(/\/lousy-login\/$/);
});

test('the login page link back after logout', async ({ page, javaScriptEnabled }) => {
  await logIn(page, javaScriptEnabled, 'root', 'pass');
  await expect(page).toHaveURL(/\/lousy-secret\/$/);
  await page.goto('/lousy-logout/');
  await page.getByTestId('login-again').click();
  await expect(page).toHaveURL(/\/lousy-login\/$/);
});

test('a plain form POST to /lousy-login/ works like the Django view', async ({ page }) => {
  await page.goto('/lousy-login/');
  const token = await page.locator('input[name=csrfmiddlewaretoken]').first().inputValue();
  expect(token).toMatch(/^[a-zA-Z0-9]{64}$/);
  const bad = await page.request.post('/lousy-login/', {
    form: { csrfmiddlewaretoken: token, username: 'root', password: 'nope' },
    maxRedirects: 0,
  });
  expect(bad.status()).toBe(302);
  expect(bad.headers()['location']).toBe('/lousy-login/');
  const ok = await page.request.post('/lousy-login/', {
    form: { csrfmiddlewaretoken: token, username: 'root', password: 'pass' },
    maxRedirects: 0,
  });
  expect(ok.status()).toBe(302);
  expect(ok.headers()['location']).toBe('/lousy-secret/');
});

test.describe('CSRF', () => {
  for (const target of ['/lousy-login/', '/api/lousy_login']) {
    test(`a cross-site form POST to ${target} is refused with 403`, async ({ page, baseURL }) => {
      // A page on another site whose form posts to us, as an attacker's would. The other site
      // is the same server under its other name (localhost vs 127.0.0.1 are different sites),
      // intercepted by Playwright, so that no network rule gets in the way of the test.
      const evil = otherSite(baseURL!) + '/evil-form.html';
      await page.route(evil, (route) =>
        route.fulfill({
          contentType: 'text/html',
          body: `<!doctype html><form method="post" action="${baseURL}${target}">
                   <input name="username" value="root"><input name="password" value="pass">
                   <input name="csrfmiddlewaretoken" value="${'a'.repeat(64)}">
                   <button id="go">go</button></form>`,
        }),
      );
      await page.goto(evil);
      const [response] = await Promise.all([
        page.waitForResponse((r) => r.url().startsWith(baseURL! + target)),
        page.click('#go'),
      ]);
      expect(response.status()).toBe(403);
      await expect(page.getByText('CSRF verification failed. Request aborted.')).toBeVisible();
    });
  }

  test('a POST with a foreign Origin, a missing or a wrong token is refused', async ({ page }) => {
    await page.goto('/lousy-login/');
    const token = await page.locator('input[name=csrfmiddlewaretoken]').first().inputValue();
    const form = { csrfmiddlewaretoken: token, username: 'root', password: 'pass' };

    const foreign = await page.request.post('/api/lousy_login', {
      form,
      headers: { origin: 'http://evil.test' },
      maxRedirects: 0,
    });
    expect(foreign.status()).toBe(403);
    expect(await foreign.text()).toContain('Origin checking failed');

    const missing = await page.request.post('/api/lousy_login', {
      form: { username: 'root', password: 'pass' },
      maxRedirects: 0,
    });
    expect(missing.status()).toBe(403);
    expect(await missing.text()).toContain('CSRF token missing');

    const wrong = await page.request.post('/api/session_action', {
      form: { csrfmiddlewaretoken: 'x'.repeat(64), action: 'set', key: 'a', value: 'b' },
      maxRedirects: 0,
    });
    expect(wrong.status()).toBe(403);
    expect(await wrong.text()).toContain('CSRF token incorrect');

    // Another browser's valid token does not work with this session.
    const other = await page.context().browser()!.newContext();
    const otherPage = await other.newPage();
    await otherPage.goto(new URL('/lousy-login/', page.url()).toString());
    const foreignToken = await otherPage.locator('input[name=csrfmiddlewaretoken]').first().inputValue();
    await other.close();
    const stolen = await page.request.post('/api/lousy_login', {
      form: { ...form, csrfmiddlewaretoken: foreignToken },
      maxRedirects: 0,
    });
    expect(stolen.status()).toBe(403);
  });
});

test('logout logs out every time (no session comes back)', async ({ page, context, javaScriptEnabled }) => {
  // Regression: a session load still in flight when flush() ran used to put the old data back
  // under a new key, now and then.
  for (let i = 0; i < 5; i++) {
    await logIn(page, javaScriptEnabled, 'root', 'pass');
    await expect(page).toHaveURL(/\/lousy-secret\/$/);
    await page.getByTestId('logout-link').click();
    await expect(page.getByTestId('output')).toHaveText('You are logged out.');
    expect(await sessionCookie(context)).toBeUndefined();
    await page.goto('/lousy-secret/');
    await expect(page).toHaveURL(/\/lousy-login\/$/);
  }
});
