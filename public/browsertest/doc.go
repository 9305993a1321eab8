// Package browsertest is the headless-Chromium harness of pushgate's
// browser tests: those of the page (public) and of the example app
// (examples/existing-app).
//
//   - Chromium finds the browser, or skips the test without one (under
//     CI=true it fails it instead: CI must run every browser test);
//   - Start runs it with a fresh profile, kept from calling out to the
//     internet; Browser.Open opens a tab, which collects what its page
//     writes to the console;
//   - a Tab runs actions under a deadline (Do, Run, Eval, Poll), clicks
//     in the flow's cross-origin iframe (ClickInFlow), and fails the test
//     on console errors and uncaught exceptions (CheckConsole).
//
// Every method fails the test on error, so a test reads as the steps a user
// takes. The test's end closes each tab, then the browser.
//
// What a page shows (its progress, its result) stays with the tests of that
// page.
package browsertest
