// Marks the page as having JavaScript (and GOV.UK Frontend's support for it) before it is
// drawn, as GOV.UK's page template does inline: the hub's Content-Security-Policy
// refuses inline script.
document.body.className += ' js-enabled' + ('noModule' in HTMLScriptElement.prototype ? ' govuk-frontend-supported' : '');
