import { expect, type BrowserContext, type Cookie, type Page } from '@playwright/test';

export const TWO_WEEKS = 1_209_600;

/** The session cookie, if the browser has one. */
export async function sessionCookie(context: BrowserContext): Promise<Cookie | undefined> {
  return (await context.cookies()).find((c) => c.name === 'sessionid');
}

/** The session cookie, asserting Django's defaults: 32 chars of [a-z0-9], HttpOnly, SameSite=Lax, path /. */
export async function expectSessionCookie(context: BrowserContext): Promise<Cookie> {
  const c = await sessionCookie(context);
  expect(c, 'a sessionid cookie').toBeDefined();
  expect(c!.value).toMatch(/^[a-z0-9]{32}$/);
  expect(c!.httpOnly).toBe(true);
  expect(c!.sameSite).toBe('Lax');
  expect(c!.path).toBe('/');
  expect(c!.secure).toBe(false);
  return c!;
}

/** The cookie expires `seconds` from now (a persistent cookie with Max-Age/Expires). */
export function expectExpiresIn(c: Cookie, seconds: number, slackSeconds = 60) {
  const now = Date.now() / 1000;
  expect(c.expires, 'a persistent cookie').toBeGreaterThan(0);
  expect(c.expires).toBeGreaterThan(now + seconds - slackSeconds);
  expect(c.expires).toBeLessThan(now + seconds + slackSeconds);
}

/** A browser-session cookie (no Max-Age/Expires): Playwright reports expires = -1. */
export function expectBrowserSessionCookie(c: Cookie) {
  expect(c.expires).toBe(-1);
}

/** Wait until the island with this test id has hydrated (its Effect set data-hydrated). */
export async function waitHydrated(page: Page, testId: string) {
  await expect(page.getByTestId(testId)).toHaveAttribute('data-hydrated', 'true');
}

/** With JS, wait for the island; without, the server-rendered form is usable at once. */
export async function ready(page: Page, testId: string, javaScriptEnabled: boolean) {
  await expect(page.getByTestId(testId)).toBeVisible();
  if (javaScriptEnabled) await waitHydrated(page, testId);
}
