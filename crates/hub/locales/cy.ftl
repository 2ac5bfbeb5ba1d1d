# Tudalennau'r hwb yn Gymraeg. Rhaid i bob neges fod yn en.ftl hefyd (mae prawf yn gwirio).
# The hub's pages in Welsh. Every message must also be in en.ftl (a test checks).

## Every page
service-name = Profi eich hunaniaeth
skip-link = Neidio i'r prif gynnwys
service-information = Gwybodaeth am y gwasanaeth
language-navigation = Iaith
phase = Beta
phase-banner = Mae hwn yn wasanaeth newydd. Bydd eich adborth yn ein helpu i'w wella.
error-prefix = Gwall:
error-summary-title = Mae problem wedi codi
back-link = Yn ôl
continue = Parhau
footer-support-links = Dolenni cymorth
footer-accessibility = Datganiad hygyrchedd
footer-privacy = Hysbysiad preifatrwydd
footer-cookies = Cwcis
footer-licence-before = Mae'r holl gynnwys ar gael o dan y
footer-licence-link = Drwydded Llywodraeth Agored v3.0
footer-licence-after = , oni nodir yn wahanol
footer-copyright = © Hawlfraint y Goron
reference = Cyfeirnod: { $code }

## The identity provider picker
picker-title = Dewiswch gwmni i brofi eich hunaniaeth
picker-lede = Mae angen i { $service } wirio pwy ydych chi. Dewiswch un o'r cwmnïau hyn i brofi eich hunaniaeth.
picker-hint = Mae'r cwmnïau hyn wedi'u hardystio i brofi eich hunaniaeth yn ddiogel.
picker-last-used = Gwnaethoch ddefnyddio'r cwmni hwn y tro diwethaf.
picker-sign-in-only = Dim ond ar gyfer pobl sydd eisoes â chyfrif gyda'r cwmni hwn.
picker-unavailable-title = Ddim ar gael ar hyn o bryd
picker-unavailable-default = Nid oes modd cysylltu â'r cwmni hwn ar hyn o bryd. Rhowch gynnig arall arni nes ymlaen neu dewiswch gwmni arall.
picker-error = Dewiswch gwmni
picker-no-account = Nid oes gennyf gyfrif gydag unrhyw un o'r cwmnïau hyn
picker-cancel = Canslo a mynd yn ôl i { $service }

## No account with any of the companies
no-account-title = Os nad oes gennych gyfrif gydag unrhyw un o'r cwmnïau hyn
no-account-intro = Gallwch greu cyfrif gydag unrhyw gwmni ar y rhestr. Fel arfer, mae'n cymryd tua 10 munud.
no-account-need = Bydd angen prawf adnabod gyda llun arnoch, fel pasbort neu drwydded yrru cerdyn-llun.
no-account-choose = Dewis cwmni
no-account-other-ways = Os na allwch brofi eich hunaniaeth ar-lein, ewch yn ôl i { $service } i ddod o hyd i ffyrdd eraill o'i ddefnyddio.

## The cycle-3 question
cycle3-title = Mae angen un manylyn arall arnom i ddod o hyd i'ch cofnod
cycle3-decline = Nid oes gennyf hwn
nino-label = Rhif Yswiriant Gwladol
nino-hint = Mae ar eich cerdyn Yswiriant Gwladol, eich slip cyflog neu eich P60. Er enghraifft, QQ 12 34 56 C.
nino-error = Rhowch eich rhif Yswiriant Gwladol yn y fformat cywir, fel QQ 12 34 56 C
driving-licence-label = Rhif trwydded yrru
driving-licence-hint = Dyma'r rhif hir yn adran 5 eich trwydded yrru cerdyn-llun.
driving-licence-error = Rhowch eich rhif trwydded yrru fel y mae'n ymddangos ar eich trwydded
reference-label = Cyfeirnod
reference-hint = Y cyfeirnod a roddodd y gwasanaeth i chi.
reference-error = Rhowch eich cyfeirnod fel y rhoddodd y gwasanaeth ef i chi

## The identity provider could not prove the citizen's identity
idp-problem-title = Nid oedd { $company } yn gallu profi eich hunaniaeth
idp-unavailable-title = Nid yw { $company } ar gael ar hyn o bryd
idp-problem-body = Weithiau, mae hyn oherwydd bod problem gyda gwefan y cwmni, neu oherwydd i chi stopio cyn y diwedd.
idp-unavailable-body = Nid yw gwefan y cwmni'n gweithio. Gallwch roi cynnig arall arni nes ymlaen, neu ddewis cwmni arall.
idp-try-again = Rhoi cynnig arall arni gyda { $company }
idp-choose-another = Dewis cwmni arall
back-to-service = Mynd yn ôl i { $service }

## The journey timed out
timed-out-title = Mae eich sesiwn wedi dod i ben
timed-out-body = Nid ydych wedi gwneud unrhyw beth ers tro, felly rydym wedi stopio gwirio eich hunaniaeth er mwyn diogelu eich gwybodaeth.
timed-out-next = Ewch yn ôl i { $service } a dechrau eto.

## The hub's own start page
start-title = Profi eich hunaniaeth
start-body = Mae gwasanaethau'r llywodraeth yn defnyddio'r gwasanaeth hwn i wirio pwy ydych chi. I'w ddefnyddio, dechreuwch o'r gwasanaeth rydych am ei ddefnyddio.
start-govuk = Dod o hyd i wasanaeth llywodraeth ar GOV.UK

## Error pages
error-unknown-client-title = Mae problem gyda'r gwasanaeth y daethoch ohono
error-unknown-client-body = Nid yw'r gwasanaeth a'ch anfonodd yma wedi'i gofrestru gyda ni.
error-bad-redirect-title = Mae problem gyda'r gwasanaeth y daethoch ohono
error-bad-redirect-body = Anfonodd y gwasanaeth chi yma gyda chyfeiriad nad ydym yn ei adnabod, felly nid ydym wedi eich anfon yn ôl ato.
error-refused-title = Mae problem gyda'r gwasanaeth y daethoch ohono
error-refused-body = Anfonodd y gwasanaeth chi yma gyda chais nad oeddem yn gallu ei dderbyn.
error-no-journey-title = Mae eich sesiwn wedi dod i ben
error-no-journey-body = Nid oeddem yn gallu dod o hyd i'ch gwiriad hunaniaeth yn y porwr hwn. Efallai ei fod wedi dod i ben, neu efallai bod eich porwr yn rhwystro cwcis.
error-unknown-state-title = Mae eich sesiwn wedi dod i ben
error-unknown-state-body = Nid oeddem yn disgwyl yr ymateb hwn gan y cwmni a wiriodd eich hunaniaeth. Efallai ei fod yn hen, neu o borwr arall.
error-bad-form-title = Mae'r dudalen hon wedi dod i ben
error-bad-form-body = Mae'r ffurflen a anfonwyd gennych wedi dod i ben neu cafodd ei hanfon o rywle arall.
error-bad-request-title = Mae'n ddrwg gennym, mae problem wedi codi
error-bad-request-body = Nid yw'r ddolen neu'r ffurflen a ddefnyddiwyd gennych yn ddilys.
error-unavailable-title = Mae'n ddrwg gennym, nid yw'r gwasanaeth ar gael
error-unavailable-body = Gallwch roi cynnig arall arni ymhen ychydig funudau.
error-not-found-title = Heb ddod o hyd i'r dudalen
error-not-found-body = Os gwnaethoch deipio'r cyfeiriad gwe, gwiriwch ei fod yn gywir. Os gwnaethoch ludo'r cyfeiriad gwe, gwiriwch eich bod wedi copïo'r cyfeiriad cyfan.
error-too-many-title = Mae'n ddrwg gennym, bu gormod o ymdrechion
error-too-many-body = Arhoswch funud, yna rhowch gynnig arall arni.
error-start-again = Ewch yn ôl i'r gwasanaeth roeddech yn ei ddefnyddio a dechrau eto.
error-try-again = Rhoi cynnig arall arni
error-go-to-start = Mynd i'r dudalen gychwyn

## Accessibility statement
accessibility-title = Datganiad hygyrchedd
accessibility-intro = Mae'r datganiad hwn yn berthnasol i dudalennau Profi eich hunaniaeth, y gwasanaeth y mae gwasanaethau'r llywodraeth yn ei ddefnyddio i wirio pwy ydych chi.
accessibility-aim = Rydym eisiau i gymaint o bobl â phosibl allu defnyddio'r gwasanaeth hwn. Dylech allu newid lliwiau, lefelau cyferbyniad a ffontiau, chwyddo hyd at 400% heb i'r testun ddiflannu oddi ar y sgrin, a defnyddio'r gwasanaeth gyda bysellfwrdd, meddalwedd adnabod llais neu ddarllenydd sgrin.
accessibility-testing-heading = Sut rydym yn profi'r gwasanaeth hwn
accessibility-testing = Rydym yn profi pob tudalen, yn Gymraeg ac yn Saesneg, gyda gwiriadau awtomatig yn erbyn safon AA fersiwn 2.2 o'r Canllawiau Hygyrchedd Cynnwys y We (WCAG), ac yn gwirio bod modd defnyddio'r gwasanaeth gyda bysellfwrdd yn unig a heb JavaScript.
accessibility-status-heading = Statws cydymffurfio
accessibility-status = Nid yw arbenigwyr hygyrchedd wedi archwilio'r gwasanaeth eto, felly ni allwn ddweud eto ei fod yn bodloni safon AA WCAG 2.2 yn llawn.
accessibility-companies = Mae'r cwmnïau sy'n profi eich hunaniaeth yn rhedeg eu gwefannau eu hunain. Maen nhw'n cyhoeddi eu datganiadau hygyrchedd eu hunain.
accessibility-problems-heading = Rhoi gwybod am broblemau hygyrchedd
accessibility-problems = Os byddwch yn dod o hyd i broblem neu os oes angen gwybodaeth arnoch mewn fformat gwahanol, cysylltwch â'r gwasanaeth roeddech yn ei ddefnyddio.
accessibility-enforcement-heading = Y weithdrefn orfodi
accessibility-enforcement = Y Comisiwn Cydraddoldeb a Hawliau Dynol (EHRC) sy'n gyfrifol am orfodi'r rheoliadau hygyrchedd. Os nad ydych yn hapus â sut rydym yn ymateb i'ch cwyn, cysylltwch â'r Gwasanaeth Cynghori a Chymorth Cydraddoldeb (EASS).

## Privacy notice
privacy-title = Hysbysiad preifatrwydd
privacy-intro = Mae'r hysbysiad hwn yn egluro beth sy'n digwydd i'ch gwybodaeth pan fyddwch yn profi eich hunaniaeth gyda'r gwasanaeth hwn.
privacy-what-heading = Beth rydym yn ei ddefnyddio
privacy-what = Mae'r cwmni rydych yn ei ddewis yn gwirio eich hunaniaeth. Mae'n anfon eich enw, eich dyddiad geni, eich cyfeiriad ac unrhyw enwau a chyfeiriadau blaenorol atom. Rydym yn eu cymharu â chofnodion y gwasanaeth rydych yn ei ddefnyddio, er mwyn dod o hyd i'ch cofnod.
privacy-share-heading = Gyda phwy rydym yn ei rhannu
privacy-share = Rydym yn anfon y canlyniad at y gwasanaeth rydych yn ei ddefnyddio: a ydym wedi dod o hyd i'ch cofnod, pa mor sicr ydym o'ch hunaniaeth, a'r manylion y cytunoch i'w rhannu. Mae'r gwasanaeth yn cael dynodydd ar eich cyfer na all neb arall ei ddefnyddio.
privacy-keep-heading = Am ba hyd rydym yn ei chadw
privacy-keep = Rydym yn dileu eich manylion pan ddaw eich ymweliad i ben, 3 awr ar ôl i chi ddechrau fan bellaf. Rydym yn cadw cofnod bod gwiriad wedi digwydd, heb eich enw na manylion eraill, am 7 mlynedd, er mwyn gallu archwilio gwiriadau.
privacy-rights-heading = Eich hawliau
privacy-rights = Gallwch ofyn am weld yr wybodaeth sydd gennym amdanoch, a gofyn iddi gael ei chywiro. Os ydych yn anhapus â sut mae eich gwybodaeth yn cael ei defnyddio, gallwch gwyno i Swyddfa'r Comisiynydd Gwybodaeth (ICO).

## Cookies
cookies-title = Cwcis
cookies-intro = Ffeiliau bach yw cwcis sy'n cael eu cadw ar eich ffôn, eich llechen neu eich cyfrifiadur pan fyddwch yn ymweld â gwefan. Dim ond cwcis sydd eu hangen er mwyn i'r gwasanaeth hwn weithio rydym yn eu defnyddio. Nid ydym yn defnyddio cwcis i'ch tracio nac i fesur sut mae'r gwasanaeth yn cael ei ddefnyddio.
cookies-table-caption = Cwcis y mae'r gwasanaeth hwn yn eu defnyddio
cookies-name = Enw
cookies-purpose = Diben
cookies-expires = Yn dod i ben
cookies-session-purpose = Yn cadw eich cynnydd wrth i chi brofi eich hunaniaeth
cookies-session-expires = Pan fyddwch yn cau eich porwr
cookies-lang-purpose = Yn cofio a wnaethoch ddewis Cymraeg neu Saesneg
cookies-lang-expires = 1 flwyddyn
cookies-last-idp-purpose = Yn cofio pa gwmni a ddewisoch, i'ch atgoffa y tro nesaf
cookies-last-idp-expires = 1 flwyddyn
