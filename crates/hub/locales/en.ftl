# The hub's pages in English. Every message must also be in cy.ftl (a test checks).
# Written for citizens: short sentences, GOV.UK style.

## Every page
service-name = Prove your identity
skip-link = Skip to main content
service-information = Service information
language-navigation = Language
phase = Beta
phase-banner = This is a new service. Your feedback will help us to improve it.
error-prefix = Error:
error-summary-title = There is a problem
back-link = Back
continue = Continue
footer-support-links = Support links
footer-accessibility = Accessibility statement
footer-privacy = Privacy notice
footer-cookies = Cookies
footer-licence-before = All content is available under the
footer-licence-link = Open Government Licence v3.0
footer-licence-after = , except where otherwise stated
footer-copyright = © Crown copyright
reference = Reference: { $code }

## The identity provider picker
picker-title = Choose a company to prove your identity
picker-lede = { $service } needs to check who you are. Choose one of these companies to prove your identity.
picker-hint = These companies are certified to prove your identity safely.
picker-last-used = You used this company last time.
picker-sign-in-only = Only for people who already have an account with this company.
picker-unavailable-title = Not available right now
picker-unavailable-default = This company cannot be reached at the moment. Try again later or choose another company.
picker-error = Select a company
picker-no-account = I do not have an account with any of these companies
picker-cancel = Cancel and go back to { $service }

## No account with any of the companies
no-account-title = If you do not have an account with any of these companies
no-account-intro = You can create an account with any company on the list. It usually takes about 10 minutes.
no-account-need = You will need a photo ID, such as a passport or a photocard driving licence.
no-account-choose = Choose a company
no-account-other-ways = If you cannot prove your identity online, go back to { $service } to find other ways to use it.

## The cycle-3 question
cycle3-title = We need one more detail to find your record
cycle3-decline = I do not have this
nino-label = National Insurance number
nino-hint = It is on your National Insurance card, payslip or P60. For example, QQ 12 34 56 C.
nino-error = Enter your National Insurance number in the correct format, like QQ 12 34 56 C
driving-licence-label = Driving licence number
driving-licence-hint = It is the long number in section 5 of your photocard driving licence.
driving-licence-error = Enter your driving licence number as it is shown on your licence
reference-label = Reference number
reference-hint = The reference number the service gave you.
reference-error = Enter your reference number as the service gave it to you

## The identity provider could not prove the citizen's identity
idp-problem-title = { $company } could not prove your identity
idp-unavailable-title = { $company } is not available at the moment
idp-problem-body = This is sometimes because the company's website had a problem, or because you stopped before the end.
idp-unavailable-body = The company's website is not working. You can try again later, or choose another company.
idp-try-again = Try again with { $company }
idp-choose-another = Choose another company
back-to-service = Go back to { $service }

## The journey timed out
timed-out-title = Your session has timed out
timed-out-body = You have not done anything for a while, so we have stopped checking your identity to protect your information.
timed-out-next = Go back to { $service } and start again.

## The hub's own start page
start-title = Prove your identity
start-body = Government services use this service to check who you are. To use it, start from the service you want to use.
start-govuk = Find a government service on GOV.UK

## Error pages
error-unknown-client-title = There is a problem with the service you came from
error-unknown-client-body = The service that sent you here is not registered with us.
error-bad-redirect-title = There is a problem with the service you came from
error-bad-redirect-body = The service sent you here with an address we do not recognise, so we have not sent you back to it.
error-refused-title = There is a problem with the service you came from
error-refused-body = The service sent you here with a request we could not accept.
error-no-journey-title = Your session has ended
error-no-journey-body = We could not find your identity check in this browser. It may have timed out, or your browser may be blocking cookies.
error-unknown-state-title = Your session has ended
error-unknown-state-body = We did not expect this response from the company that checked your identity. It may be old, or from another browser.
error-bad-form-title = This page has expired
error-bad-form-body = The form you sent has expired or was sent from somewhere else.
error-bad-request-title = Sorry, there is a problem
error-bad-request-body = The link or form you used is not valid.
error-unavailable-title = Sorry, the service is unavailable
error-unavailable-body = You can try again in a few minutes.
error-not-found-title = Page not found
error-not-found-body = If you typed the web address, check it is correct. If you pasted the web address, check you copied the entire address.
error-too-many-title = Sorry, there have been too many attempts
error-too-many-body = Wait a minute, then try again.
error-start-again = Go back to the service you were using and start again.
error-try-again = Try again
error-go-to-start = Go to the start page

## Accessibility statement
accessibility-title = Accessibility statement
accessibility-intro = This statement applies to the pages of Prove your identity, the service government services use to check who you are.
accessibility-aim = We want as many people as possible to be able to use this service. You should be able to change colours, contrast levels and fonts, zoom in up to 400% without the text spilling off the screen, and use the service with a keyboard, speech recognition software or a screen reader.
accessibility-testing-heading = How we test this service
accessibility-testing = We test every page, in English and in Welsh, with automated checks against the Web Content Accessibility Guidelines (WCAG) version 2.2 AA standard, and check that the service can be used with a keyboard only and with JavaScript turned off.
accessibility-status-heading = Compliance status
accessibility-status = The service has not yet been audited by accessibility specialists, so we cannot yet say that it fully meets the WCAG 2.2 AA standard.
accessibility-companies = The companies that prove your identity run their own websites. They publish their own accessibility statements.
accessibility-problems-heading = Reporting accessibility problems
accessibility-problems = If you find a problem or need information in a different format, contact the service you were using.
accessibility-enforcement-heading = Enforcement procedure
accessibility-enforcement = The Equality and Human Rights Commission (EHRC) is responsible for enforcing the accessibility regulations. If you are not happy with how we respond to your complaint, contact the Equality Advisory and Support Service (EASS).

## Privacy notice
privacy-title = Privacy notice
privacy-intro = This notice explains what happens to your information when you prove your identity with this service.
privacy-what-heading = What we use
privacy-what = The company you choose checks your identity. It sends us your name, date of birth, address and any previous names and addresses. We compare them with the records of the service you are using, to find your record.
privacy-share-heading = Who we share it with
privacy-share = We send the service you are using the result: whether we found your record, how sure we are of your identity, and the details you agreed to share. The service gets an identifier for you that only it can use.
privacy-keep-heading = How long we keep it
privacy-keep = We delete your details when your visit ends, at most 3 hours after you start. We keep a record that a check happened, without your name or other details, for 7 years, so that checks can be audited.
privacy-rights-heading = Your rights
privacy-rights = You can ask to see the information held about you, and ask for it to be corrected. If you are unhappy with how your information is used, you can complain to the Information Commissioner's Office (ICO).

## Cookies
cookies-title = Cookies
cookies-intro = Cookies are small files saved on your phone, tablet or computer when you visit a website. We only use cookies that this service needs to work. We do not use cookies to track you or to measure how the service is used.
cookies-table-caption = Cookies this service uses
cookies-name = Name
cookies-purpose = Purpose
cookies-expires = Expires
cookies-session-purpose = Keeps your progress while you prove your identity
cookies-session-expires = When you close your browser
cookies-lang-purpose = Remembers whether you chose English or Welsh
cookies-lang-expires = 1 year
cookies-last-idp-purpose = Remembers which company you chose, to remind you next time
cookies-last-idp-expires = 1 year
