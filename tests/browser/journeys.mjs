// Walks the hub's pages in headless Chromium and reports what a citizen's browser met
// there (run by tests/browser.rs; see docs/interop.md, "Browser tests").
//
//   node journeys.mjs '<input JSON>'
//
// Input:
//   {
//     "chromium": "/usr/bin/chromium",
//     "hub": "http://127.0.0.1:PORT",                  // the hub's origin
//     "other_hubs": ["http://127.0.0.1:PORT"],         // more hubs whose pages are recorded
//     "rp_callback": "http://127.0.0.1:PORT/callback", // the RPs' redirect URI (a page)
//     "screenshots": "/abs/dir",                        // PNGs (and <scenario>.json) go here
//     "timeout_ms": 30000,                              // per navigation and per action
//     "scenarios": [{
//       "name": "default",
//       "input": "pointer" | "keyboard",                // keyboard: Tab, arrows, Space, Enter only
//       "javascript": true,                             // false: JavaScript disabled
//       "lang": null | "cy",                            // appended as ?lang= to URLs opened directly
//       "error_pages": [{"name": "not-found", "url": "http://..."}],
//       "info_pages": [{"name": "cookies", "url": "http://HUB/cookies"}],
//       "timed_out": null | {"start": "http://OTHER_HUB/authorize?...", "wait_ms": 2500},
//       "journeys": [{
//         "name": "match",
//         "start": "http://HUB/authorize?...",          // the test RP's authorization URL
//         "idp": {"id": "idp-main", "name": "Main IdP"},// chosen on the picker (by its label)
//         "person": "alice",                            // logged in as at the demo IdP
//         "cycle3": null | {"invalid": "...", "valid": "..."},
//         "extras": false,                              // true: the picker's error state and
//                                                       // the no-account page on the way
//         "then": null | {"id": "...", "name": "..."}   // cancel at the first IdP, then from
//                                                       // the hub's page choose this one
//       }]
//     }]
//   }
//
// Output (stdout, one JSON object):
//   {"chromium": "VERSION", "scenarios": {"<name>": {"scenario": "<name>",
//     "pages": [{"id": "match/picker", "journey", "page", "path", "status", "title", "lang",
//                "h1", "scripting", "violations": [{"id", "impact", "nodes", "help", "targets"}],
//                "passed": ["<axe rule id>", ...],
//                "screenshot": "<name>-match-picker.png"}],
//     "journeys": [{"name", "reached_rp", "callback": {"code", "state", "iss", "error"},
//                   "idp_origin", "error"}]}}}
//
// Only the hub's own pages are recorded (axe, lang, title, screenshot); the demo IdP and
// the RP callback are only passed through. A journey that fails is reported with its
// error (and a "<scenario>-<journey>-failed.png"), and the walk goes on.

import { mkdir, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import path from 'node:path';
import { chromium } from 'playwright-core';

const require = createRequire(import.meta.url);
const AXE_SOURCE = await readFile(require.resolve('axe-core/axe.min.js'), 'utf8');

/** WCAG 2.2 AA: axe-core's rules tagged with these. */
const WCAG_22_AA = ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa', 'wcag22aa'];

/**
 * How the walk finds its way on each page: the one place with selectors. Forms are found
 * by their `action`, fields by their `name` (both are the server's contract, and survive a
 * redesign or a translation); visible wording is never matched, except the identity
 * provider's name as the accessible name of its radio (it comes from configuration).
 */
const PAGES = {
  picker: {
    form: 'form[action$="/journey/idp"]',
    radios: 'form[action$="/journey/idp"] input[type="radio"][name="idp"]',
    radio: (id) => `form[action$="/journey/idp"] input[type="radio"][name="idp"][value="${id}"]`,
    // The form's default button (the first): what Enter would press.
    submit: 'form[action$="/journey/idp"] :is(button, input[type="submit"])',
  },
  cycle3: {
    form: 'form[action$="/journey/cycle3"]',
    field: 'form[action$="/journey/cycle3"] input[name="value"]',
    // Continue must stay the form's first button (its default button, what Enter presses);
    // "I don't have this" (action=skip) comes after it.
    submit: 'form[action$="/journey/cycle3"] :is(button, input[type="submit"])',
  },
  // Ways forward on the picker: the page for citizens without an account, and back.
  noAccount: {
    link: 'a[href*="/journey/no-account"]',
    choose: 'main a[href*="/journey?"]:not(.govuk-back-link)',
  },
  // The hub's page after an identity provider failed: "choose another company".
  idpProblem: {
    chooseAnother: 'a[href*="step=choose"]',
    back: 'form[action$="/journey/cancel"]',
  },
  // The demo identity provider's login page (devkit), not a hub page.
  idpLogin: {
    form: 'form[action$="/login"]',
    person: (subject) => `form[action$="/login"] button[name="subject"][value="${subject}"]`,
    cancel: '#cancel',
  },
};

const input = JSON.parse(process.argv[2] ?? '');
const hub = new URL(input.hub).origin;
// Hubs whose pages are recorded too (one with a short journey lifetime, for the page
// that says a journey timed out).
const hubs = new Set([hub, ...(input.other_hubs ?? []).map((h) => new URL(h).origin)]);
const timeout = input.timeout_ms ?? 30000;

const browser = await chromium.launch({
  executablePath: input.chromium,
  timeout,
  // /dev/shm is often small in CI containers.
  args: ['--disable-dev-shm-usage', '--disable-gpu'],
});
const output = { chromium: browser.version(), scenarios: {} };
try {
  await mkdir(input.screenshots, { recursive: true });
  for (const scenario of input.scenarios) {
    output.scenarios[scenario.name] = await runScenario(scenario);
    await writeFile(
      path.join(input.screenshots, `${scenario.name}.json`),
      JSON.stringify(output.scenarios[scenario.name], null, 2),
    );
  }
} finally {
  await browser.close();
}
process.stdout.write(JSON.stringify(output) + '\n');

async function runScenario(scenario) {
  for (const file of await readdir(input.screenshots)) {
    if (file.startsWith(`${scenario.name}-`) && file.endsWith('.png')) {
      await rm(path.join(input.screenshots, file));
    }
  }
  const context = await browser.newContext({ viewport: { width: 1024, height: 768 } });
  context.setDefaultTimeout(timeout);
  context.setDefaultNavigationTimeout(timeout);
  const walk = { scenario, pages: [], journeys: [] };
  try {
    for (const [group, list] of [['errors', scenario.error_pages], ['info', scenario.info_pages]]) {
      for (const direct of list ?? []) {
        const page = await newPage(context, scenario);
        try {
          await page.goto(withLang(scenario, direct.url));
          await record(walk, page, group, direct.name);
        } finally {
          await page.close();
        }
      }
    }
    if (scenario.timed_out) await timedOut(walk, context, scenario.timed_out);
    for (const journey of scenario.journeys ?? []) {
      walk.journeys.push(await runJourney(walk, context, journey));
    }
  } finally {
    await context.close();
  }
  return { scenario: scenario.name, pages: walk.pages, journeys: walk.journeys };
}

/**
 * A page that remembers the status of the last document it loaded. Without JavaScript,
 * script execution is disabled over the DevTools protocol (what Puppeteer's
 * `setJavaScriptEnabled(false)` does) rather than with Playwright's context option, so that
 * it can be enabled for the moment axe runs on a loaded page (axe needs timers).
 */
async function newPage(context, scenario) {
  const page = await context.newPage();
  page.javascript = scenario.javascript !== false;
  page.cdp = await context.newCDPSession(page);
  if (!page.javascript) await scripting(page, false);
  page.documentStatus = null;
  page.on('response', (response) => {
    if (response.request().isNavigationRequest() && response.frame() === page.mainFrame()) {
      page.documentStatus = response.status();
    }
  });
  return page;
}

function withLang(scenario, url) {
  if (!scenario.lang) return url;
  const u = new URL(url);
  u.searchParams.set('lang', scenario.lang);
  return u.href;
}

async function runJourney(walk, context, journey) {
  const keyboard = walk.scenario.input === 'keyboard';
  const result = { name: journey.name, reached_rp: false, callback: null, idp_origin: null, error: null };
  const page = await newPage(context, walk.scenario);
  const isHub = (url) => url.origin === hub;
  const atRp = (url) => url.href.startsWith(input.rp_callback);
  try {
    await page.goto(withLang(walk.scenario, journey.start));
    await expectOn(page, PAGES.picker.form, 'the identity provider picker');
    await record(walk, page, journey.name, 'picker');

    if (journey.extras) {
      // Continue without a choice: the picker again, with its error.
      await navigation(page, (url) => url.pathname.endsWith('/journey/idp'), () =>
        page.locator(PAGES.picker.submit).first().click());
      await expectOn(page, PAGES.picker.form, 'the picker again');
      if ((await page.getByRole('alert').count()) === 0) throw new Error('no role=alert on the picker error');
      await record(walk, page, journey.name, 'picker-error');
      // "I do not have an account", then back to the picker.
      await navigation(page, (url) => url.pathname.endsWith('/journey/no-account'), () =>
        page.locator(PAGES.noAccount.link).first().click());
      await record(walk, page, journey.name, 'no-account');
      await navigation(page, (url) => url.pathname === '/journey', () =>
        page.locator(PAGES.noAccount.choose).first().click());
      await expectOn(page, PAGES.picker.form, 'the picker from the no-account page');
    }

    // The picker: choose the identity provider, continue.
    const radio = page.getByRole('radio', { name: journey.idp.name, exact: true });
    await expectValue(radio, journey.idp.id, `the radio labelled ${journey.idp.name}`);
    const leaveHub = (url) => !isHub(url);
    if (keyboard) {
      await tabTo(page, PAGES.picker.radios);
      await arrowTo(page, PAGES.picker.radio(journey.idp.id));
      await page.keyboard.press('Space');
      if (!(await radio.isChecked())) throw new Error(`Space did not check ${journey.idp.name}`);
      await tabTo(page, PAGES.picker.submit);
      await navigation(page, leaveHub, () => page.keyboard.press('Enter'));
    } else {
      await radio.check();
      await navigation(page, leaveHub, () => page.locator(PAGES.picker.submit).first().click());
    }

    // The demo identity provider: log in as the test person.
    await expectOn(page, PAGES.idpLogin.form, 'the demo identity provider login');
    result.idp_origin = new URL(page.url()).origin;
    if (journey.then) {
      // Cancel at this identity provider: the hub's page offers another company.
      await navigation(page, isHub, () => page.locator(PAGES.idpLogin.cancel).click());
      await expectOn(page, PAGES.idpProblem.back, 'the identity provider problem page');
      await record(walk, page, journey.name, 'idp-problem');
      await navigation(page, (url) => url.pathname === '/journey', () =>
        page.locator(PAGES.idpProblem.chooseAnother).first().click());
      await expectOn(page, PAGES.picker.form, 'the picker again');
      await record(walk, page, journey.name, 'choose-another');
      const another = page.getByRole('radio', { name: journey.then.name, exact: true });
      await another.check();
      await navigation(page, leaveHub, () => page.locator(PAGES.picker.submit).first().click());
      await expectOn(page, PAGES.idpLogin.form, 'the other identity provider');
      result.idp_origin = new URL(page.url()).origin;
    }
    const afterIdp = journey.cycle3 ? isHub : atRp;
    if (keyboard) {
      await tabTo(page, PAGES.idpLogin.person(journey.person));
      await navigation(page, afterIdp, () => page.keyboard.press('Enter'));
    } else {
      await navigation(page, afterIdp, () => page.locator(PAGES.idpLogin.person(journey.person)).click());
    }

    if (journey.cycle3) {
      // The cycle-3 question: an invalid answer first (the error state), then a valid one.
      await expectOn(page, PAGES.cycle3.form, 'the cycle-3 question');
      await record(walk, page, journey.name, 'question');
      const before = page.url();
      await answer(page, keyboard, journey.cycle3.invalid, (url) => isHub(url) && url.href !== before);
      await expectOn(page, PAGES.cycle3.form, 'the cycle-3 question again');
      const alert = page.getByRole('alert');
      if ((await alert.count()) === 0) throw new Error('no role=alert on the cycle-3 error state');
      await record(walk, page, journey.name, 'question-error');
      await answer(page, keyboard, journey.cycle3.valid, atRp);
    }

    const callback = new URL(page.url());
    result.callback = Object.fromEntries(
      ['code', 'state', 'iss', 'error'].map((k) => [k, callback.searchParams.get(k)]),
    );
    result.reached_rp = true;
  } catch (e) {
    result.error = `${e.message} (at ${page.url()})`;
    await page
      .screenshot({ path: path.join(input.screenshots, `${walk.scenario.name}-${journey.name}-failed.png`), fullPage: true })
      .catch(() => {});
  } finally {
    await page.close();
  }
  return result;
}

/**
 * A journey left on the picker past its lifetime (`wait_ms`: the hub's short journey
 * lifetime has passed; the wait is the behaviour under test), opened again: the page that
 * says it timed out, then back to the service.
 */
async function timedOut(walk, context, timed) {
  const page = await newPage(context, walk.scenario);
  try {
    await page.goto(withLang(walk.scenario, timed.start));
    await expectOn(page, PAGES.picker.form, 'the picker of the journey left to expire');
    const journey = await page.locator(`${PAGES.picker.form} input[name="journey"]`).getAttribute('value');
    await page.waitForTimeout(timed.wait_ms);
    const again = new URL('/journey', page.url());
    again.searchParams.set('journey', journey);
    await page.goto(withLang(walk.scenario, again.href));
    await expectOn(page, PAGES.idpProblem.back, 'the timed-out page');
    await record(walk, page, 'errors', 'timed-out');
    await navigation(page, (url) => url.href.startsWith(input.rp_callback), () =>
      page.locator(`${PAGES.idpProblem.back} button`).click());
  } finally {
    await page.close();
  }
}

/** Types `value` into the cycle-3 field and submits it. */
async function answer(page, keyboard, value, arrived) {
  if (keyboard) {
    await tabTo(page, PAGES.cycle3.field);
    await page.keyboard.press('ControlOrMeta+A');
    await page.keyboard.type(value);
    // Enter in a text field submits with the form's default button.
    await navigation(page, arrived, () => page.keyboard.press('Enter'));
  } else {
    await page.locator(PAGES.cycle3.field).fill(value);
    await navigation(page, arrived, () => page.locator(PAGES.cycle3.submit).first().click());
  }
}

/** Runs `action` and waits until a document whose URL satisfies `arrived` has loaded. */
async function navigation(page, arrived, action) {
  const from = new URL(page.url());
  if (arrived(from)) throw new Error(`walk error: already at ${from.href}`);
  await Promise.all([page.waitForURL(arrived, { waitUntil: 'load' }), action()]);
}

async function expectOn(page, selector, what) {
  if ((await page.locator(selector).count()) === 0) {
    throw new Error(`expected ${what} (${selector}); got "${await page.title()}"`);
  }
}

async function expectValue(locator, value, what) {
  const count = await locator.count();
  if (count !== 1) throw new Error(`expected one ${what}, found ${count}`);
  const actual = await locator.getAttribute('value');
  if (actual !== value) throw new Error(`${what} has value ${actual}, expected ${value}`);
}

function focused(page, selector) {
  return page.evaluate((s) => document.activeElement?.matches(s) ?? false, selector);
}

/** Presses Tab until the focused element matches `selector`. */
async function tabTo(page, selector, maxPresses = 40) {
  for (let i = 0; i < maxPresses; i++) {
    if (await focused(page, selector)) return;
    await page.keyboard.press('Tab');
  }
  if (await focused(page, selector)) return;
  throw new Error(`Tab never reached ${selector} in ${maxPresses} presses`);
}

/** Presses ArrowDown (in a radio group) until the focused element matches `selector`. */
async function arrowTo(page, selector, maxPresses = 20) {
  for (let i = 0; i < maxPresses; i++) {
    if (await focused(page, selector)) return;
    await page.keyboard.press('ArrowDown');
  }
  if (await focused(page, selector)) return;
  throw new Error(`ArrowDown never reached ${selector}`);
}

async function scripting(page, enabled) {
  await page.cdp.send('Emulation.setScriptExecutionDisabled', { value: !enabled });
}

/** axe, lang, title and a screenshot of the hub page `page` shows now. */
async function record(walk, page, journey, name) {
  const url = new URL(page.url());
  if (!hubs.has(url.origin)) throw new Error(`walk error: ${url.href} is not a hub page`);
  const facts = await page.evaluate(() => {
    // Markup in <noscript> parses as elements only where scripting is disabled.
    const probe = document.createElement('div');
    probe.innerHTML = '<noscript><i></i></noscript>';
    return {
      lang: document.documentElement.getAttribute('lang'),
      title: document.title,
      h1: document.querySelector('h1')?.textContent.trim() ?? null,
      // GOV.UK Frontend's page template, as the hub's pages must have it.
      govuk: {
        stylesheet: document.querySelector('link[rel="stylesheet"][href^="/assets/govuk-frontend.min.css"]') !== null,
        header: document.querySelector('header .govuk-header') !== null,
        footer: document.querySelector('footer.govuk-footer') !== null,
        skip_link: document.querySelector('a.govuk-skip-link[href="#main-content"]') !== null
          && document.getElementById('main-content') !== null,
        language_links: [...document.querySelectorAll('nav.govuk-language-navigation a[hreflang]')]
          .map((a) => a.getAttribute('hreflang')),
        footer_links: [...document.querySelectorAll('footer a.govuk-footer__link')]
          .map((a) => a.getAttribute('href')),
      },
      scripting: probe.querySelector('i') === null,
    };
  });
  // axe is evaluated over the DevTools protocol: the hub's Content-Security-Policy (no
  // scripts) stays in force for the page itself.
  if (!page.javascript) await scripting(page, true);
  let results;
  try {
    await page.evaluate(AXE_SOURCE);
    results = await page.evaluate(
      (tags) => axe.run(document, { runOnly: { type: 'tag', values: tags }, resultTypes: ['violations'] }),
      WCAG_22_AA,
    );
  } finally {
    if (!page.javascript) await scripting(page, false);
  }
  const screenshot = `${walk.scenario.name}-${journey}-${name}.png`;
  await page.screenshot({ path: path.join(input.screenshots, screenshot), fullPage: true });
  walk.pages.push({
    id: `${journey}/${name}`,
    journey,
    page: name,
    path: url.pathname,
    status: page.documentStatus,
    ...facts,
    violations: results.violations.map((v) => ({
      id: v.id,
      impact: v.impact,
      nodes: v.nodes.length,
      help: v.help,
      targets: v.nodes.slice(0, 5).map((n) => n.target.join(' ')),
    })),
    // The rules that passed: evidence that axe did check the page.
    passed: results.passes.map((r) => r.id),
    screenshot,
  });
}
