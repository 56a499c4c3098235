"""The person-name detector's rules table: the gazetteer it reads, the cue words (titles,
greetings, particles) and the patterns that cut text into capitalised runs and words.

Data and rules only; names.py is the matcher that applies them (split from it so that each
reads on its own).
"""

from __future__ import annotations

import re
from importlib import resources


def _words(blob: str) -> frozenset[str]:
    return frozenset(blob.split())


# Column of each country in nam_dict.txt (see gender_guesser.detector.Detector.COUNTRIES):
# Great Britain, Ireland, USA, Italy, Spain, France, Belgium, Netherlands, Germany, Austria,
# Switzerland, Poland. Names frequent only elsewhere add false positives, not recall.
COUNTRY_COLUMNS = (0, 1, 2, 3, 6, 7, 8, 10, 12, 13, 14, 23)
MIN_FREQUENCY = 1  # hex scale 1..D, roughly logarithmic; 1 = "rare but attested"
LONE_MIN_FREQUENCY = 3  # a first name standing alone must be a common one
# Countries many residents of the seven languages' countries come from: Portugal, Romania,
# Bosnia, Croatia, Serbia, Albania, Russia, Ukraine, Turkey, the Arab countries, China,
# India, Vietnam. Their common first names (frequency 6 or more there) count too, but as rare
# ones: never alone, only with a surname, a title, a greeting or in a list.
DIASPORA_COLUMNS = (5, 27, 29, 30, 34, 36, 38, 41, 46, 47, 49, 50, 53)
DIASPORA_MIN_FREQUENCY = 6
# Those of them that are also words of the seven languages ("Can Europe", "Nur Gäste", "Van
# Dijk", "Pero Juan"), and every name of one or two letters ("An", "Do", "Li").
DIASPORA_WORDS = _words(
    """Alla Ante Bac Ban Bang Bay Bien Bin Cam Can Chi Dat Duc Fan Gang Gia Hai Hala Hang Hau
    Hue Hui Hun Lam Lei Lin Loan Loc Long Man Mate Mato Mile Min Mine Mong Nan Nur Pal Pero
    Phi Ping Rade Ram Rana Sali Sana Sang Sava Son Sun Tai Tam Tan Tao Tat The Thi Tin Tong
    Tran Trang Van"""
)

# First names that are also ordinary capitalised words in one of the seven languages (or
# places). They never start a name on their own; a title or greeting still makes them count.
AMBIGUOUS = _words(
    """Paris Roma Florence Victoria China India Georgia Israel Jordan Kent Lourdes Sevilla
    April May June August Mai Juni Julio Augusto Marzo Mayo Domingo Mercedes Rosario Dolores
    Rose Will Mark Page Grace Hope Joy Faith Bill Ray Sun Bank Max Frank Dean Guy Pat Sky
    Haus Frau Kind Rosa Lilie Wolf Fuchs Stern Sonne Gloria Aurora Fortuna Pace Bella Nina
    Ana Olive Pearl Ruby Amber Ivy Iris Jade Dawn Eve Summer Major General Grand Lord Royal
    Amsterdam Berlin Milano Madrid London Wien Lisboa Europa Norma Fe Luz Paz Cruz Sol Mar
    Angel Beau Constance Clement Earnest Ernest Lucky Sterling Chase Hunter Rich Young Cher
    Secondo Consiglio Clio El Il Lo Le La Les Het Een Der Die Das Den The An"""
)
# Listed as first names, but in these languages almost always a saint, a royal title or a
# street or place word that starts the name of a place: never the start of a person's name.
NEVER_FIRST = _words(
    """San Santa Santo Sankt Saint Sainte São Rey Reina Marqués Isola Aleja Ulica Via Calle
    Piazza Plaza Rue Place Porta Porto Villa Castel Monte Puerto"""
)

# Words that cannot be a surname token: months, weekdays, places, street and institution
# nouns. A first name before one of these is a street, a date or a place, not a person.
NOT_SURNAME = _words(
    """Janvier Février Mars Avril Mai Juin Juillet Août Septembre Octobre Novembre Décembre
    Januar Februar März April Juni Juli August Oktober Dezember Gennaio Febbraio Marzo Aprile
    Maggio Giugno Luglio Agosto Settembre Ottobre Dicembre Enero Febrero Abril Mayo Junio Julio
    Septiembre Octubre Noviembre Diciembre Januari Februari Maart Mei Juli Augustus Oktober
    Stycznia Lutego Marca Kwietnia Maja Czerwca Lipca Sierpnia Września Października Listopada
    Grudnia January February March May June July September October November December
    Lundi Mardi Mercredi Jeudi Vendredi Samedi Dimanche Montag Dienstag Mittwoch Donnerstag
    Freitag Samstag Sonntag Lunedì Martedì Mercoledì Giovedì Venerdì Sabato Domenica Lunes
    Martes Miércoles Jueves Viernes Sábado Domingo Maandag Dinsdag Woensdag Donderdag Vrijdag
    Zaterdag Zondag Monday Tuesday Wednesday Thursday Friday Saturday Sunday
    Paris Lyon Marseille Berlin München Hamburg Köln Wien Zürich Milano Roma Torino Napoli
    Madrid Barcelona Sevilla Valencia Amsterdam Rotterdam Utrecht Kraków Warszawa Gdańsk
    London Manchester Bruxelles Genève Europe Europa
    Street Road Avenue Lane Square Hospital University College School Institute Foundation
    Straße Strasse Platz Allee Weg Klinik Stiftung Universität Schule Gymnasium Bahnhof
    Straat Laan Plein Gracht Ziekenhuis Stichting Ltd Inc GmbH AG SA SAS BV NV LLC Logistics
    Manager Cloud Pro Suite Server Studio Plus Edition Group Holding
    Airport Arena ArenA Huis Haus Museum Stadion Stadium Hall Park Centre Center Theater
    Theatre Tower Station Prize Award Preis Prijs Premio"""
)

# Legal forms and institution nouns after the span: "Martin Bauer GmbH", "Jan de Vries BV",
# "Antoni van Leeuwenhoek Ziekenhuis" name a company or a building, not a person.
AFTER = re.compile(
    r"\s*(?:(?i:ziekenhuis|hospital|klinik|stiftung|foundation|institute?|school|schule|huis|"
    r"arena|stadion|stadium|airport|museum|centre|center)\b|Straße|Street|Road|Avenue|"
    r"Stichting|Prize|Award|Preis|Gymnasium|&|\+|GmbH|AG\b|KG\b|SA\b|SAS\b|SARL\b|S\.A\.|"
    r"S\.p\.A\.|S\.r\.l\.|Srl\b|SpA\b|SL\b|S\.L\.|BV\b|B\.V\.|NV\b|N\.V\.|Ltd|LLC|Inc\b|"
    r"plc\b|Sp\. z o\.o\.|& Co|und Söhne|e\.V\.)"
)
# A preceding word that makes the next capitalised tokens a street, venue or saint.
PLACE_CUE = re.compile(
    r"(?:\b(?:rue|avenue|av\.|boulevard|bd|place|quai|impasse|allée|chemin|cours|via|viale|"
    r"piazza|piazzale|corso|largo|vicolo|calle|avenida|av|paseo|plaza|carrer|camino|ul\.|ulica|"
    r"al\.|aleja|plac|osiedle|lycée|collège|école|hôpital|hospital|clinique|ospedale|clinica|"
    r"istituto|instituto|institut|université|università|universidad|fondation|fondazione|"
    r"fundación|stade|stadio|estadio|gare|stazione|estación|station|métro|metro|aéroport|"
    r"aeroporto|aeropuerto|"
    r"musée|museo|museum|centre|centro|saint|sainte|st|ste|san|santa|santo|sankt|são|"
    r"szpital|uniwersytet|szkoła|ulicy|kościół|kościoła|prix|premio|preis|prijs|prize|award|"
    r"liceo|ginnasio|scuola|colegio|escuela|gimnazjum|liceum|universitario|universitaria|"
    r"universitaire|universitair|im|rey|reina|roi|re|könig|koning|koningin|king|queen|"
    r"schip|ship|navire|nave|buque|statek|schiff)\.?"
    r"|[-'\u2019])\s*$",
    re.IGNORECASE,
)

# Titles and salutations, as printed. Case-sensitive on purpose: "fr." or "pan" mean other things.
TITLES = _words(
    """M. MM. Mme Mmes Mlle Mlles Madame Monsieur Maître Me Herr Herrn Frau Hr. Fr. Fräulein
    Sig. Sig.ra Sig.na Signor Signora Signorina Dott. Dott.ssa Avv. Ing. Sr. Sra. Srta. Señor
    Señora Señorita Don Doña Dña. Dhr. Mevr. Mw. Mr Mr. Mrs Mrs. Ms Ms. Miss Mx. Sir Dame Pan
    Pani Pana Panu Panem Panią Panie Państwo Dr Dr. Prof. Prof Mag. Dipl.-Ing. Dr.-Ing.
    med. dr mgr inż. Mgr heer mevrouw meneer Heer Mevrouw Meneer Dra. Dra geb. née"""
)
# Greetings that introduce a bare first name ("Dear Anna,", "Liebe Sabine,", "Hola Lucía").
GREETINGS = _words(
    """Bonjour Bonsoir Salut Cher Chère Dear Hi Hello Hallo Liebe Lieber Sehr Ciao Caro Cara
    Gentile Gentilissima Gentilissimo Hola Estimado Estimada Querido Querida Beste Geachte Hoi
    Dag Beste Drogi Droga Szanowny Szanowna Cześć Witaj"""
)
# Words that close a message before the sender's first name ("Cheers, Hannah"); they are
# greetings as cues, and never a surname (unlike "Gentile", both "Dear" and a surname).
CLOSINGS = _words(
    """Thanks Merci Danke Grazie Gracias Bedankt Dziękuję Cheers Regards Best Love Bises Bisous
    Cordialement Grüße Gruß Saluti Baci Besos Abrazos Saludos Groetjes Groeten Pozdrawiam
    Pozdrowienia"""
)
GREETINGS |= CLOSINGS
PARTICLES = _words("de du des d' van von der den ter ten zu zur di da del della dei degli dos la")

# "section A. Scope", "Anhang B. Kosten": a lettered part of a document, not an initial.
SECTION = re.compile(
    r"(?i:section|sección|sezione|annex|annexe|appendix|chapter|chapitre|capitolo|capítulo|"
    r"kapitel|abschnitt|anhang|anlage|article|artikel|articolo|artículo|punto|apartado|"
    r"hoofdstuk|bijlage|rozdział|załącznik|part|partie|teil|parte|deel|część|"
    r"point|item|option|variant|variante|type|typ|tipo|class|klasse|classe|grade)\s*$"
)
INITIAL = re.compile(r"[A-ZÀ-ÖØ-Þ\u0100-\u017F]\.")
# One word: a letter run, optionally hyphenated or with an elided prefix ("O'Brien", "D'Amico"),
# or an abbreviation with a dot ("Sig.ra", "Dott.ssa", "M.").
WORD = re.compile(r"(?:[^\W\d_]+['\u2019])?[^\W\d_]+(?:[-.][^\W\d_]+)*\.?")
# A run of capitalised words, joined by spaces, ", " or name particles: every rule needs one.
RUN = re.compile(
    r"[A-ZÀ-ÖØ-Þ\u0100-\u017F][\w'\u2019.-]*"
    r"(?:(?:[ \t]+|,[ \t]*)(?:(?:[dD]['\u2019]|(?:de|du|des|van|von|der|den|ter|ten|zu|zur|"
    r"di|da|del|della|dei|degli|dos|la)[ \t]+))*[A-ZÀ-ÖØ-Þ\u0100-\u017F][\w'\u2019.-]*)*"
)
# Polish inflects names ("Janem Kowalskim", "Agnieszki"): map a few case endings back to the
# nominative the gazetteer holds. Only consulted for tokens not found as they are.
PL_ENDINGS = (
    ("owi", ""),
    ("em", ""),
    ("iem", ""),
    ("ie", ""),
    ("a", ""),
    ("u", ""),
    ("y", "a"),
    ("i", "a"),
    ("ą", "a"),
    ("ę", "a"),
    ("ii", "ia"),
    ("ę", "o"),
    ("io", "ia"),
    ("o", "a"),
    # Mobile e: Paweł -> Pawła, Pawłowi; Marek -> Marka, Markiem.
    ("ła", "eł"),
    ("łowi", "eł"),
    ("łem", "eł"),
    ("ka", "ek"),
    ("kiem", "ek"),
    ("kowi", "ek"),
    # Dative and locative with an alternation: Jolanta -> Jolancie, Magda -> Magdzie,
    # Barbara -> Barbarze, Teresa -> Teresie.
    ("cie", "ta"),
    ("dzie", "da"),
    ("rze", "ra"),
    ("sie", "sa"),
)


STREET_SUFFIXES = (
    "laan",
    "straat",
    "plein",
    "gracht",
    "kade",
    "singel",
    "straße",
    "strasse",
    "gasse",
    "allee",
    "platz",
)


# What ends a sentence or opens a quote: a capitalised word after one may be any word.
SENTENCE_START = frozenset(".!?\n\"«“„('")
# "Ingrid und Rüdiger ...": a coordinated first name names a person even at sentence start.
AND_FIRST = re.compile(r"[ \t]+(?:and|et|und|e|y|i|en|oraz|&)[ \t]+([^\W\d_][\w-]*)")
# Upper-case words that are not surnames written "NOM Prénom" in forms.
ACRONYMS = _words(
    """CEO CFO CTO COO CIO CISO DPO HR RH DRH PDG DG IT EU UE USA UK ONU UNO NATO OTAN GDPR
    RGPD DSGVO IBAN VAT TVA NIF PDF URL API FYI ATTN NB PS RE FW AW SAS SARL GMBH SPA SRL
    ASAP TODO CV ID OK"""
)


def load_first_names() -> dict[str, int]:
    """First name -> its highest frequency (1-13) in the countries kept."""
    # Read the data file only; the gazetteer logic is ours, so nothing else of the package runs.
    raw = resources.files("gender_guesser").joinpath("data/nam_dict.txt").read_text("utf-8")
    names: dict[str, int] = {}
    for line in raw.splitlines():
        if not line or line[0] in "#=":
            continue
        counts = line[30:-1]
        freq = max(
            (int(counts[i], 16) for i in COUNTRY_COLUMNS if i < len(counts) and counts[i] != " "),
            default=0,
        )
        name = line[2:29].split()[0]
        if freq < MIN_FREQUENCY:
            elsewhere = max(
                (
                    int(counts[i], 16)
                    for i in DIASPORA_COLUMNS
                    if i < len(counts) and counts[i] != " "
                ),
                default=0,
            )
            if elsewhere < DIASPORA_MIN_FREQUENCY or len(name) < 3 or name in DIASPORA_WORDS:
                continue
            freq = MIN_FREQUENCY  # never enough to stand alone
        for spelling in (name.replace("+", "-"), name.replace("+", "")):
            names[spelling] = max(freq, names.get(spelling, 0))
    return names
