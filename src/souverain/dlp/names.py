"""Person-name detector for FR, DE, IT, ES, NL, PL and EN text, without a statistical model.

Why no NER model: the official spaCy models on PyPI cover only some of these languages, hub
models (GLiNER, transformers) download weights at run time, and an English NER run on French
text tags half of every sentence as a person. Instead: a first-name gazetteer (the nam_dict
list shipped in the `gender-guesser` wheel, read as data, with per-country frequencies) plus
the structure names take in text - a known first name before capitalised surname tokens,
an honorific ("Mme", "Herr", "Sig.ra", "Pani", "Dr.") before capitalised tokens, a greeting
before a first name, and "Surname, Firstname" in lists. Guards drop streets, places, months
and company names, which are the usual false positives of such rules.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass, field
from importlib import resources
from typing import NamedTuple

from souverain.dlp.detectors import Finding


def _words(blob: str) -> frozenset[str]:
    return frozenset(blob.split())


# Column of each country in nam_dict.txt (see gender_guesser.detector.Detector.COUNTRIES):
# Great Britain, Ireland, USA, Italy, Spain, France, Belgium, Netherlands, Germany, Austria,
# Switzerland, Poland. Names frequent only elsewhere add false positives, not recall.
_COUNTRY_COLUMNS = (0, 1, 2, 3, 6, 7, 8, 10, 12, 13, 14, 23)
_MIN_FREQUENCY = 1  # hex scale 1..D, roughly logarithmic; 1 = "rare but attested"
_LONE_MIN_FREQUENCY = 3  # a first name standing alone must be a common one
# Countries many residents of the seven languages' countries come from: Portugal, Romania,
# Bosnia, Croatia, Serbia, Albania, Russia, Ukraine, Turkey, the Arab countries, China,
# India, Vietnam. Their common first names (frequency 6 or more there) count too, but as rare
# ones: never alone, only with a surname, a title, a greeting or in a list.
_DIASPORA_COLUMNS = (5, 27, 29, 30, 34, 36, 38, 41, 46, 47, 49, 50, 53)
_DIASPORA_MIN_FREQUENCY = 6
# Those of them that are also words of the seven languages ("Can Europe", "Nur Gäste", "Van
# Dijk", "Pero Juan"), and every name of one or two letters ("An", "Do", "Li").
_DIASPORA_WORDS = _words(
    """Alla Ante Bac Ban Bang Bay Bien Bin Cam Can Chi Dat Duc Fan Gang Gia Hai Hala Hang Hau
    Hue Hui Hun Lam Lei Lin Loan Loc Long Man Mate Mato Mile Min Mine Mong Nan Nur Pal Pero
    Phi Ping Rade Ram Rana Sali Sana Sang Sava Son Sun Tai Tam Tan Tao Tat The Thi Tin Tong
    Tran Trang Van"""
)

# First names that are also ordinary capitalised words in one of the seven languages (or
# places). They never start a name on their own; a title or greeting still makes them count.
_AMBIGUOUS = _words(
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
_NEVER_FIRST = _words(
    """San Santa Santo Sankt Saint Sainte São Rey Reina Marqués Isola Aleja Ulica Via Calle
    Piazza Plaza Rue Place Porta Porto Villa Castel Monte Puerto"""
)

# Words that cannot be a surname token: months, weekdays, places, street and institution
# nouns. A first name before one of these is a street, a date or a place, not a person.
_NOT_SURNAME = _words(
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
_AFTER = re.compile(
    r"\s*(?:(?i:ziekenhuis|hospital|klinik|stiftung|foundation|institute?|school|schule|huis|"
    r"arena|stadion|stadium|airport|museum|centre|center)\b|Straße|Street|Road|Avenue|"
    r"Stichting|Prize|Award|Preis|Gymnasium|&|\+|GmbH|AG\b|KG\b|SA\b|SAS\b|SARL\b|S\.A\.|"
    r"S\.p\.A\.|S\.r\.l\.|Srl\b|SpA\b|SL\b|S\.L\.|BV\b|B\.V\.|NV\b|N\.V\.|Ltd|LLC|Inc\b|"
    r"plc\b|Sp\. z o\.o\.|& Co|und Söhne|e\.V\.)"
)
# A preceding word that makes the next capitalised tokens a street, venue or saint.
_PLACE_CUE = re.compile(
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
_TITLES = _words(
    """M. MM. Mme Mmes Mlle Mlles Madame Monsieur Maître Me Herr Herrn Frau Hr. Fr. Fräulein
    Sig. Sig.ra Sig.na Signor Signora Signorina Dott. Dott.ssa Avv. Ing. Sr. Sra. Srta. Señor
    Señora Señorita Don Doña Dña. Dhr. Mevr. Mw. Mr Mr. Mrs Mrs. Ms Ms. Miss Mx. Sir Dame Pan
    Pani Pana Panu Panem Panią Panie Państwo Dr Dr. Prof. Prof Mag. Dipl.-Ing. Dr.-Ing.
    med. dr mgr inż. Mgr heer mevrouw meneer Heer Mevrouw Meneer Dra. Dra geb. née"""
)
# Greetings that introduce a bare first name ("Dear Anna,", "Liebe Sabine,", "Hola Lucía").
_GREETINGS = _words(
    """Bonjour Bonsoir Salut Cher Chère Dear Hi Hello Hallo Liebe Lieber Sehr Ciao Caro Cara
    Gentile Gentilissima Gentilissimo Hola Estimado Estimada Querido Querida Beste Geachte Hoi
    Dag Beste Drogi Droga Szanowny Szanowna Cześć Witaj"""
)
# Words that close a message before the sender's first name ("Cheers, Hannah"); they are
# greetings as cues, and never a surname (unlike "Gentile", both "Dear" and a surname).
_CLOSINGS = _words(
    """Thanks Merci Danke Grazie Gracias Bedankt Dziękuję Cheers Regards Best Love Bises Bisous
    Cordialement Grüße Gruß Saluti Baci Besos Abrazos Saludos Groetjes Groeten Pozdrawiam
    Pozdrowienia"""
)
_GREETINGS |= _CLOSINGS
_PARTICLES = _words("de du des d' van von der den ter ten zu zur di da del della dei degli dos la")

# "section A. Scope", "Anhang B. Kosten": a lettered part of a document, not an initial.
_SECTION = re.compile(
    r"(?i:section|sección|sezione|annex|annexe|appendix|chapter|chapitre|capitolo|capítulo|"
    r"kapitel|abschnitt|anhang|anlage|article|artikel|articolo|artículo|punto|apartado|"
    r"hoofdstuk|bijlage|rozdział|załącznik|part|partie|teil|parte|deel|część|"
    r"point|item|option|variant|variante|type|typ|tipo|class|klasse|classe|grade)\s*$"
)
_INITIAL = re.compile(r"[A-ZÀ-ÖØ-Þ\u0100-\u017F]\.")
# One word: a letter run, optionally hyphenated or with an elided prefix ("O'Brien", "D'Amico"),
# or an abbreviation with a dot ("Sig.ra", "Dott.ssa", "M.").
_WORD = re.compile(r"(?:[^\W\d_]+['\u2019])?[^\W\d_]+(?:[-.][^\W\d_]+)*\.?")
# A run of capitalised words, joined by spaces, ", " or name particles: every rule needs one.
_RUN = re.compile(
    r"[A-ZÀ-ÖØ-Þ\u0100-\u017F][\w'\u2019.-]*"
    r"(?:(?:[ \t]+|,[ \t]*)(?:(?:[dD]['\u2019]|(?:de|du|des|van|von|der|den|ter|ten|zu|zur|"
    r"di|da|del|della|dei|degli|dos|la)[ \t]+))*[A-ZÀ-ÖØ-Þ\u0100-\u017F][\w'\u2019.-]*)*"
)
# Polish inflects names ("Janem Kowalskim", "Agnieszki"): map a few case endings back to the
# nominative the gazetteer holds. Only consulted for tokens not found as they are.
_PL_ENDINGS = (
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


_STREET_SUFFIXES = (
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
_SENTENCE_START = frozenset(".!?\n\"«“„('")
# "Ingrid und Rüdiger ...": a coordinated first name names a person even at sentence start.
_AND_FIRST = re.compile(r"[ \t]+(?:and|et|und|e|y|i|en|oraz|&)[ \t]+([^\W\d_][\w-]*)")
# Upper-case words that are not surnames written "NOM Prénom" in forms.
_ACRONYMS = _words(
    """CEO CFO CTO COO CIO CISO DPO HR RH DRH PDG DG IT EU UE USA UK ONU UNO NATO OTAN GDPR
    RGPD DSGVO IBAN VAT TVA NIF PDF URL API FYI ATTN NB PS RE FW AW SAS SARL GMBH SPA SRL
    ASAP TODO CV ID OK"""
)


class _Tok(NamedTuple):  # a NamedTuple builds several times faster than a frozen dataclass
    start: int
    end: int
    text: str
    gap: str  # text between the previous token and this one


def _load_first_names() -> dict[str, int]:
    """First name -> its highest frequency (1-13) in the countries kept."""
    # Read the data file only; the gazetteer logic is ours, so nothing else of the package runs.
    raw = resources.files("gender_guesser").joinpath("data/nam_dict.txt").read_text("utf-8")
    names: dict[str, int] = {}
    for line in raw.splitlines():
        if not line or line[0] in "#=":
            continue
        counts = line[30:-1]
        freq = max(
            (int(counts[i], 16) for i in _COUNTRY_COLUMNS if i < len(counts) and counts[i] != " "),
            default=0,
        )
        name = line[2:29].split()[0]
        if freq < _MIN_FREQUENCY:
            elsewhere = max(
                (
                    int(counts[i], 16)
                    for i in _DIASPORA_COLUMNS
                    if i < len(counts) and counts[i] != " "
                ),
                default=0,
            )
            if elsewhere < _DIASPORA_MIN_FREQUENCY or len(name) < 3 or name in _DIASPORA_WORDS:
                continue
            freq = _MIN_FREQUENCY  # never enough to stand alone
        for spelling in (name.replace("+", "-"), name.replace("+", "")):
            names[spelling] = max(freq, names.get(spelling, 0))
    return names


def _ends_sentence(word: str) -> bool:
    """A word with a full stop that is not an abbreviation ("Dupont." but not "J." or "Dr.")."""
    return word.endswith(".") and not _INITIAL.fullmatch(word) and word not in _TITLES


def _cap(word: str) -> bool:
    # A trailing dot is the sentence's ("... Dupont."), except on initials ("J.").
    return word[:1].isupper() and len(word.rstrip(".")) > 1


@dataclass
class PersonNameDetector:
    """Finds person names; the span covers the name itself, never the title or greeting."""

    name: str = "person_names"
    types: tuple[str, ...] = ("person",)
    first_names: dict[str, int] = field(default_factory=_load_first_names, repr=False)
    _memo: dict[tuple[str, bool], int] = field(default_factory=dict, repr=False, compare=False)

    def _first(self, word: str, strict: bool) -> int:
        """How common a first name `word` is (0: not one). `strict` excludes names that are
        also common words."""
        key = (word, strict)
        hit = self._memo.get(key)
        if hit is None:
            hit = self._memo[key] = self._first_uncached(word, strict)
            if len(self._memo) > 50_000:  # prompts repeat their vocabulary; bound the memory
                self._memo.clear()
        return hit

    def _first_uncached(self, word: str, strict: bool) -> int:
        word = word.rstrip(".")
        if (strict and word in _AMBIGUOUS) or word in _NEVER_FIRST:
            return 0
        if word in _GREETINGS or word in _TITLES:
            return 0
        names = self.first_names
        if word in names:
            return names[word]
        folded = unicodedata.normalize("NFD", word).encode("ascii", "ignore").decode()
        if folded != word and folded in names:
            return names[folded]  # the list spells some names unaccented: "Etienne"
        if "-" in word:  # "Jean-Pierre", "Anna-Lena"
            parts = word.split("-")
            return min(names.get(p, 0) for p in parts)
        for suffix, repl in _PL_ENDINGS:
            if word.endswith(suffix) and len(word) > 3:
                base = word[: -len(suffix)] + repl
                if base in names:
                    return names[base]
        return 0

    def _surname(self, word: str) -> bool:
        bare = word.rstrip(".")
        if "." in bare:  # "B.V.", "S.p.A.": an abbreviation, not a surname
            return False
        return (
            _cap(word)
            and bare not in _NOT_SURNAME
            and word not in _TITLES
            and bare not in _CLOSINGS  # "Cheers, Hannah" signs a message
            and not bare.lower().endswith(_STREET_SUFFIXES)  # "Willem de Zwijgerlaan"
        )

    def _tail(self, toks: list[_Tok], i: int, limit: int) -> int:
        """Index after the surname tokens starting at i (particles allowed), or i if none."""
        j, end, taken = i, i, 0
        while j < len(toks) and taken < limit and toks[j].gap.strip(" ") in ("", "-"):
            w = toks[j].text
            if j > i and "\n" in toks[j].gap:
                break
            if (j and _ends_sentence(toks[j - 1].text)) or "  " in toks[j].gap:
                break  # "Mr Barnes. Apologies", "NOM : MERCIER  Prénom": the next is no name
            if w.lower() in _PARTICLES or w in ("d'", "D'"):
                j += 1
                continue
            if not self._surname(w):
                break
            j += 1
            end, taken = j, taken + 1
        return end

    def find(self, text: str) -> list[Finding]:
        spans: list[tuple[int, int]] = []
        for run in _RUN.finditer(text):
            # Tokenise only the run of capitalised words plus the word before it (a title or
            # greeting cue): prose in lowercase never reaches Python code, which keeps a 2 KB
            # prompt well under budget.
            start = run.start()
            ws = text.rfind(" ", max(0, start - 40), max(0, start - 1)) + 1
            if run.end() - start == len(run.group().split(None, 1)[0]):
                # A lone capitalised word (sentence start, place) is a name only after a cue,
                # or if it is a first name in mid-sentence or before "and <first name>".
                cue = text[ws:start].strip()
                if cue not in _TITLES and cue not in _GREETINGS:
                    if self._lone_first_name(text, start, run.end()):
                        spans.append((start, run.end() - text.endswith(".", start, run.end())))
                    continue
            toks: list[_Tok] = []
            prev = ws
            for m in _WORD.finditer(text, ws, run.end()):
                s, e = m.span()
                toks.append(_Tok(s, e, m.group(), text[prev:s]))
                prev = e
            self._scan(text, toks, int(bool(toks) and toks[0].start < start), spans)
        return [Finding(s, e, "person", text[s:e]) for s, e in spans]

    def _lone_first_name(self, text: str, start: int, end: int) -> bool:
        """A first name on its own: "Merci à Benoît", "laut Uwe", "Ingrid und Rüdiger Berger"."""
        word = text[start:end].rstrip(".")
        if self._first(word, strict=True) < _LONE_MIN_FREQUENCY or word in _NOT_SURNAME:
            return False  # a rare name alone is more often a brand; months, cities
        if self._guarded(text, start, end):
            return False
        if text[max(0, start - 3) : start].rstrip(" \t").endswith("&"):
            return False  # "Marks & Spencer", "Dolce & Gabbana": a firm
        if not self._starts_sentence(text, start):
            return True
        after = _AND_FIRST.match(text, end)
        return after is not None and self._first(after.group(1), strict=True) > 0

    @staticmethod
    def _starts_sentence(text: str, start: int) -> bool:
        before = text[max(0, start - 3) : start].rstrip(" \t")
        return not before or before[-1] in _SENTENCE_START

    def _scan(self, text: str, toks: list[_Tok], i: int, spans: list[tuple[int, int]]) -> None:
        while i < len(toks):
            t = toks[i]
            if not t.text[0].isupper():  # every rule starts on a capital: skip the rest cheaply
                i += 1
                continue
            end = self._match_at(text, toks, i)
            if end > i:
                s, e = t.start, toks[end - 1].end
                e -= text.endswith(".", s, e)
                if text.endswith(("'s", "\u2019s"), s, e):  # "Sarah Connolly's leave"
                    e -= 2
                if not self._guarded(text, s, e):
                    spans.append((s, e))
                i = end
            else:
                i += 1

    def _match_at(self, text: str, toks: list[_Tok], i: int) -> int:
        """End index (exclusive) of a name whose first token is toks[i], else i."""
        w = toks[i].text
        prev = toks[i - 1].text if i else ""
        gap = toks[i].gap.strip(" ")
        cue = (prev in _TITLES or prev in _GREETINGS) and gap in ("", ",")
        if prev in _TITLES and gap == "" and _cap(w) and w not in _TITLES:
            # After a title every capitalised token belongs to the name: "Frau Dr. Anna Weber".
            return self._tail(toks, i, 3)
        if w in _TITLES:
            return i
        if not _cap(w):
            return self._initials_at(text, toks, i)
        if (
            w.isupper()
            and len(w) > 2
            and w not in _ACRONYMS
            and i + 1 < len(toks)
            and not _ends_sentence(w)
        ):
            # "MARCHAND Yannick" in forms: an upper-case surname, then the first name.
            nxt = toks[i + 1]
            if nxt.gap == " " and not nxt.text.isupper() and self._first(nxt.text, True):
                return i + 2
        if self._first(w, strict=not cue):
            j = i + 1
            # Up to two more given names: "Jean Paul Dupont", "Maria Luisa Fernández".
            while (
                j < min(i + 3, len(toks))
                and toks[j].gap == " "
                and self._first(toks[j].text, strict=True)
            ):
                j += 1
            if j < len(toks) and toks[j].gap == " " and _INITIAL.fullmatch(toks[j].text):
                j += 1  # a middle initial: "Franklin D. Roosevelt"
            end = self._tail(toks, j, 2)
            if end > j:
                return end
            if _INITIAL.fullmatch(toks[j - 1].text):
                j -= 1  # an initial with no surname after it is not part of the name
            if j > i + 1 and toks[j - 1].text not in _AMBIGUOUS:
                return j  # "Anna Maria": the last given name doubles as surname
            if cue and prev in _GREETINGS:
                return j  # "Liebe Sabine," - a bare first name after a greeting
        # "Dupont, Marie" in lists and headers: a surname, a comma, a known first name ending
        # the item. Needs the item boundary after it so "In Paris, Anna said" does not match.
        if (
            i + 1 < len(toks)
            and toks[i + 1].gap == ", "
            and self._surname(w)
            and self._first(toks[i + 1].text, strict=True)
            and text[toks[i + 1].end :].lstrip(" ")[:1] in ("", ";", "\n", ")", "|")
            and not (i and toks[i].gap.strip(" ") in ("", ","))
        ):
            return i + 2
        if self._alone(text, toks, i):
            return i + 1  # "Secondo Franco, il ...": a first name alone, mid-sentence
        return i

    def _alone(self, text: str, toks: list[_Tok], i: int) -> bool:
        """toks[i] is a first name with no capitalised word glued to it on either side."""
        # Glued to a capitalised word, it is part of a longer name or title, unless that word
        # merely starts the sentence and is no name ("Selon Jacqueline", "Laut Uwe ist").
        prev = toks[i - 1].text if i else ""
        glued_before = (
            toks[i].gap == " "
            and _cap(prev)
            and (self._first(prev, False) > 0 or not self._starts_sentence(text, toks[i - 1].start))
        )
        glued_after = (
            i + 1 < len(toks)
            and toks[i + 1].gap.strip(" ") in ("", "-")
            and "  " not in toks[i + 1].gap  # two spaces part the fields of a form
            and not _ends_sentence(toks[i].text)
        )
        if glued_before or glued_after:
            return False
        return self._lone_first_name(text, toks[i].start, toks[i].end)

    def _initials_at(self, text: str, toks: list[_Tok], i: int) -> int:
        """ "A. Herrero", "J. K. Rowling": one or two initials, then a surname, not at the start
        of a line (where "A. Introduction" numbers a section)."""
        j = i
        while j < min(i + 2, len(toks)) and _INITIAL.fullmatch(toks[j].text):
            if j > i and toks[j].gap != " ":
                return i
            j += 1
        if j == i or j >= len(toks) or toks[j].gap != " " or not self._surname(toks[j].text):
            return i
        line = text[text.rfind("\n", 0, toks[i].start) + 1 : toks[i].start]
        if not line.strip() or toks[j].text.isupper() or _SECTION.search(line[-24:]):
            return i
        return self._tail(toks, j, 2)

    def _guarded(self, text: str, start: int, end: int) -> bool:
        """True when context shows the span is a street, venue, saint or company."""
        return bool(_PLACE_CUE.search(text, max(0, start - 16), start)) or bool(
            _AFTER.match(text, end)
        )
