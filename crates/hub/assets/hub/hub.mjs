// Starts GOV.UK Frontend's components (error summary focus, radios, skip link). The
// pages work fully without it.
import { initAll } from './govuk-frontend.min.js'
initAll()
