"""The client's signed acceptance of the restitution bundle (procès-verbal de réception).

The acceptance opens the exit's one-way doors (access revoked, copies
erased, early if the client asks), so it is a statement the client signs
with an SSH key the playbook names (`reversibility.client_signers`), not a
form anyone reaching the Prefect UI can fill. One text serves the people and
the flow: a fixed header, `key: value` lines the flow reads, then the same
facts in words, in the contract's language (`contract.language`: French or
English; a statement printed before the contract had a language carries both,
French first, and is still read). Every line is derived from the fields and
the language its prose is in, so `parse_statement` renders them back and
demands the very same text: what the flow acts on is exactly what was signed,
and a statement edited after printing (the prose saying one thing, a field
another) is refused. Its wording is fixed here, not in the documents' message
catalogue a provider may override: a signed statement must render the same
wherever it is checked.

The statement names the bundle by its name and by the SHA-256 of its
`SHA256SUMS` file, which the client computes with `sha256sum SHA256SUMS` in
the delivered folder. handover takes that hash from the exit state: the
writer renders `SHA256SUMS` from the sealed file hashes (`SealedBundle.files`)
with `render_sums`, so rendering them again gives the same bytes without a
read, for a folder delivery and for S3 alike, and still after the erasure.
For a folder delivery the delivered file is also read and must agree (a
bundle replaced in the delivery folder is not the one sealed). S3 deliveries
are checked in the bucket (SHA256SUMS, signature and hashes) when they are
delivered, so no second read is needed here.

Signatures are `ssh-keygen -Y sign -n handover-acceptance` signatures, so a
client needs OpenSSH alone; the namespace keeps a bundle signature or any
other SSH signature from passing as an acceptance.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import struct
from collections.abc import Sequence
from datetime import date, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Literal, Self

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from handover.bundle import sshsig
from handover.bundle.sums import SUMS_NAME, render_sums
from handover.contract.signers import AllowedSigner, load_signers
from handover.errors import BundleCorrupt, HandoverError, KeyFormatError, UsageError
from handover.sshkeys import SshPublicKey, fingerprint

if TYPE_CHECKING:
    from handover.bundle.summary import SealedBundle
    from handover.contract.playbook import Playbook
    from handover.exit.delivery import DeliveryRecord

NAMESPACE = "handover-acceptance"
HEADER = "HANDOVER CLIENT ACCEPTANCE STATEMENT v1"
END_OF_FIELDS = "END OF FIELDS"
MAX_STATEMENT_BYTES = 64 * 1024
MAX_SIGNATURE_BYTES = 16 * 1024

Decision = Literal["accepted", "accepted-with-reservations", "refused"]
StatementLanguage = Literal["fr", "en", "fr+en"]  # fr+en: as printed before contract.language
_FRENCH_TITLE = "PROCÈS-VERBAL DE RÉCEPTION DE LA RESTITUTION"
_ENGLISH_TITLE = "CLIENT ACCEPTANCE OF THE RESTITUTION"
DECISIONS: tuple[Decision, ...] = ("accepted", "accepted-with-reservations", "refused")

_FIELDS = (
    "contract",
    "contract-title",
    "provider",
    "client",
    "bundle",
    "bundle-sums-sha256",
    "decision",
    "early-erasure",
    "signatory",
    "date",
    "reservations",
)
_HEX = frozenset("0123456789abcdef")


class AcceptanceRejected(UsageError):
    """A client acceptance that cannot be trusted: unsigned, badly signed, or not this bundle's.

    The message says why, so the operator can tell the client what to fix;
    nothing of a rejected statement is acted on.
    """


def _one_line(value: str) -> str:
    text = " ".join(value.split())
    if not text:
        raise ValueError("must not be empty")
    return text


def _reservations_text(value: str) -> str:
    """Reservations as the statement carries them: lines trimmed, blank lines dropped."""
    if any(ord(c) < 32 and c not in "\n\t" for c in value.replace("\r\n", "\n")):
        raise ValueError("control characters are not allowed")
    return "\n".join(" ".join(line.split()) for line in value.splitlines() if line.strip())


class AcceptanceStatement(BaseModel):
    """What the client declares: this bundle (name and SUMS hash), this decision, by this person."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    contract: str
    contract_title: str
    provider: str
    client: str
    bundle: str
    sums_sha256: str = Field(description="SHA-256 of the bundle's SHA256SUMS file (hex)")
    decision: Decision
    early_erasure: bool = False
    signatory: str
    signed_on: date
    reservations: str = ""
    language: StatementLanguage = "fr+en"

    @field_validator("contract", "contract_title", "provider", "client", "bundle", "signatory")
    @classmethod
    def _single_line(cls, value: str) -> str:
        return _one_line(value)

    @field_validator("reservations")
    @classmethod
    def _reservations(cls, value: str) -> str:
        return _reservations_text(value)

    @field_validator("sums_sha256")
    @classmethod
    def _hex_digest(cls, value: str) -> str:
        text = value.strip().lower()
        if len(text) != 64 or not set(text) <= _HEX:
            raise ValueError("must be a SHA-256 in hex (64 characters)")
        return text

    @model_validator(mode="after")
    def _coherent(self) -> Self:
        if self.decision == "accepted-with-reservations" and not self.reservations:
            raise ValueError("accepted-with-reservations needs the reservations")
        if self.early_erasure and self.decision != "accepted":
            raise ValueError("early erasure can only be asked with the decision 'accepted'")
        return self


class VerifiedAcceptance(BaseModel):
    """A statement whose signature, signer, bundle and digest were all checked."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    statement: AcceptanceStatement
    principal: str  # the allowed signer's principal(s)
    signer_fingerprint: str  # SHA256:... of the key that signed
    statement_sha256: str  # of the statement bytes as signed
    statement_text: str
    signature: str


# -- the statement as text ------------------------------------------------------------------

_DECISION_FR: dict[str, str] = {
    "accepted": "réception prononcée sans réserve : le client a vérifié et ouvert le lot et "
    "l'accepte.",
    "accepted-with-reservations": "réception prononcée avec réserves : une nouvelle livraison "
    "corrigée est attendue ; rien d'irréversible (révocation des accès, effacement) n'a lieu "
    "avant elle.",
    "refused": "réception refusée : le lot ne convient pas au client.",
}
_DECISION_EN: dict[str, str] = {
    "accepted": "accepted without reservations: the client verified and opened the bundle "
    "and accepts it.",
    "accepted-with-reservations": "accepted with reservations: a corrected re-delivery is "
    "expected; nothing irreversible (access revocation, erasure) happens before it.",
    "refused": "refused: the bundle does not suit the client.",
}


def _yes_no(value: bool) -> str:
    return "yes" if value else "no"


def _indented(text: str, fallback: str) -> list[str]:
    return [f"  {line}" for line in text.splitlines()] if text else [f"  {fallback}"]


def render_statement(statement: AcceptanceStatement) -> str:
    """The statement to sign: header, `key: value` fields, then the same in the statement's
    language (French, English, or both for a statement of before `contract.language`).

    Deterministic: the same fields always give the same text, which is what
    `parse_statement` relies on to refuse an edited statement.
    """
    s = statement
    reservations = s.reservations.splitlines()
    fields = [
        HEADER,
        f"contract: {s.contract}",
        f"contract-title: {s.contract_title}",
        f"provider: {s.provider}",
        f"client: {s.client}",
        f"bundle: {s.bundle}",
        f"bundle-sums-sha256: {s.sums_sha256}",
        f"decision: {s.decision}",
        f"early-erasure: {_yes_no(s.early_erasure)}",
        f"signatory: {s.signatory}",
        f"date: {s.signed_on.isoformat()}",
        f"reservations: {reservations[0]}" if reservations else "reservations:",
        *(f"  {line}" for line in reservations[1:]),
        END_OF_FIELDS,
    ]
    early_fr = (
        "oui : le client demande l'effacement des copies du prestataire dès la réception, "
        "avant la fin de la période de récupération."
        if s.early_erasure
        else "non : les copies du prestataire sont effacées à la fin de la période de récupération."
    )
    early_en = (
        "yes: the client asks for the provider's copies to be erased upon acceptance, "
        "before the end of the retrieval period."
        if s.early_erasure
        else "no: the provider's copies are erased at the end of the retrieval period."
    )
    french = [
        _FRENCH_TITLE,
        "",
        f"{s.client}, représenté par {s.signatory}, déclare avoir reçu de {s.provider}, "
        f"au titre du contrat {s.contract} ({s.contract_title}), le lot de restitution "
        f"« {s.bundle} », dont le fichier {SUMS_NAME} a pour empreinte SHA-256 :",
        f"  {s.sums_sha256}",
        f"(à vérifier par : sha256sum {SUMS_NAME}, dans le dossier du lot).",
        "",
        f"Décision : {_DECISION_FR[s.decision]}",
        "Réserves :",
        *_indented(s.reservations, "aucune"),
        f"Effacement anticipé : {early_fr}",
        f"Fait le {s.signed_on.isoformat()}.",
    ]
    english = [
        _ENGLISH_TITLE,
        "",
        f"{s.client}, represented by {s.signatory}, declares having received from "
        f"{s.provider}, under contract {s.contract} ({s.contract_title}), the restitution "
        f'bundle "{s.bundle}", whose {SUMS_NAME} file has the SHA-256:',
        f"  {s.sums_sha256}",
        f"(check with: sha256sum {SUMS_NAME}, in the bundle's folder).",
        "",
        f"Decision: {_DECISION_EN[s.decision]}",
        "Reservations:",
        *_indented(s.reservations, "none"),
        f"Early erasure: {early_en}",
        f"Signed on {s.signed_on.isoformat()}.",
    ]
    command = f"  ssh-keygen -Y sign -n {NAMESPACE} -f <client signing key> acceptance.txt"
    if s.language == "fr":
        signing = [
            "Signature : ce texte, inchangé :",
            command.replace("<client signing key>", "<clé de signature du client>"),
            "  (écrit acceptance.txt.sig)",
        ]
        prose = [*french, "", *signing]
    elif s.language == "en":
        signing = ["Signature: this text, unchanged:", command, "  (writes acceptance.txt.sig)"]
        prose = [*english, "", *signing]
    else:
        signing = [
            "Signature : ce texte, inchangé / Signature: this text, unchanged:",
            command,
            "  (writes acceptance.txt.sig)",
        ]
        prose = [*french, "", *english, "", *signing]
    return "\n".join([*fields, "", *prose]) + "\n"


def _language_of(lines: Sequence[str]) -> StatementLanguage:
    """The language a statement's prose is in, from its titles (both: the form of before)."""
    french, english = _FRENCH_TITLE in lines, _ENGLISH_TITLE in lines
    if french and not english:
        return "fr"
    if english and not french:
        return "en"
    return "fr+en"


def _problems(exc: ValidationError) -> str:
    return "; ".join(
        f"{'.'.join(str(p) for p in error['loc']) or 'statement'}: {error['msg']}"
        for error in exc.errors(include_input=False)
    )


def _malformed(why: str) -> AcceptanceRejected:
    return AcceptanceRejected(f"malformed acceptance statement: {why}")


def _read_fields(lines: list[str]) -> dict[str, str]:
    """The `key: value` lines between the header and END OF FIELDS (reservations may continue)."""
    values: dict[str, str] = {}
    last = ""
    for number, line in enumerate(lines[1:], start=2):
        if line == END_OF_FIELDS:
            return values
        if line.startswith("  ") and last == "reservations":
            values[last] += "\n" + line[2:]
            continue
        key, sep, value = line.partition(":")
        if not sep or key not in _FIELDS:
            raise _malformed(
                f"line {number}: expected a field ({', '.join(_FIELDS)}: value) "
                f"or {END_OF_FIELDS!r}"
            )
        if key in values:
            raise _malformed(f"line {number}: {key} given twice")
        values[key] = value.strip()
        last = key
    raise _malformed(f"no {END_OF_FIELDS!r} line after the fields")


def parse_statement(text: str | bytes) -> AcceptanceStatement:
    """The statement's fields; AcceptanceRejected unless the text is exactly what handover renders.

    Line ends may be CRLF (a statement saved on Windows); anything else that
    differs from the rendering of its own fields (prose edited, a field added
    or reordered) is refused, naming the first line that differs.
    """
    if isinstance(text, bytes):
        if len(text) > MAX_STATEMENT_BYTES:
            raise _malformed(f"larger than {MAX_STATEMENT_BYTES} bytes")
        try:
            text = text.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise _malformed("not UTF-8 text") from exc
    text = text.replace("\r\n", "\n")
    lines = text.split("\n")
    if lines[0].lstrip("\ufeff") != HEADER:
        raise _malformed(f"the first line must be {HEADER!r}")
    values = _read_fields(lines)
    missing = [key for key in _FIELDS if key not in values]
    if missing:
        raise _malformed("missing " + ", ".join(missing))
    if values["early-erasure"] not in ("yes", "no"):
        raise _malformed("early-erasure must be yes or no")
    try:
        statement = AcceptanceStatement.model_validate(
            {
                "contract": values["contract"],
                "contract_title": values["contract-title"],
                "provider": values["provider"],
                "client": values["client"],
                "bundle": values["bundle"],
                "sums_sha256": values["bundle-sums-sha256"],
                "decision": values["decision"],
                "early_erasure": values["early-erasure"] == "yes",
                "signatory": values["signatory"],
                "signed_on": values["date"],
                "reservations": values["reservations"],
                "language": _language_of(lines),
            }
        )
    except ValidationError as exc:
        raise _malformed(_problems(exc)) from exc
    _require_canonical(text.lstrip("\ufeff"), render_statement(statement))
    return statement


def _require_canonical(text: str, rendered: str) -> None:
    if text == rendered:
        return
    given, expected = text.split("\n"), rendered.split("\n")
    for number, (a, b) in enumerate(zip(given, expected, strict=False), start=1):
        if a != b:
            raise AcceptanceRejected(
                f"the acceptance statement was edited after handover printed it (line {number} "
                f"reads {a[:60]!r}, expected {b[:60]!r}): print it again with "
                "`handover acceptance statement` and sign it unchanged"
            )
    raise AcceptanceRejected(
        "the acceptance statement was edited after handover printed it (lines added or "
        "removed at its end): print it again with `handover acceptance statement` and sign "
        "it unchanged"
    )


# -- the signature --------------------------------------------------------------------------


def _signer_of(signature: str) -> SshPublicKey:
    """The public key a signature names (not yet checked); AcceptanceRejected when unreadable."""
    text = signature.strip()
    if not text.startswith(sshsig.ARMOR_BEGIN) or not text.endswith(sshsig.ARMOR_END):
        raise AcceptanceRejected(
            "the signature is not an SSH signature (-----BEGIN SSH SIGNATURE----- block, "
            f"as `ssh-keygen -Y sign -n {NAMESPACE}` writes)"
        )
    body = "".join(text[len(sshsig.ARMOR_BEGIN) : -len(sshsig.ARMOR_END)].split())
    try:
        blob = base64.b64decode(body, validate=True)
        if blob[:6] != sshsig.MAGIC:
            raise ValueError("no SSHSIG magic")
        (size,) = struct.unpack(">I", blob[10:14])
        wire = blob[14 : 14 + size]
        if len(wire) != size:
            raise ValueError("truncated")
        (type_size,) = struct.unpack(">I", wire[:4])
        key_type = wire[4 : 4 + type_size].decode("ascii")
    except (binascii.Error, ValueError, struct.error, UnicodeDecodeError) as exc:
        raise AcceptanceRejected("the signature block is damaged (not a readable SSHSIG)") from exc
    return SshPublicKey(key_type, wire)


def _check_signature(
    data: bytes, signature: str, signers: Sequence[AllowedSigner]
) -> AllowedSigner:
    """The allowed signer whose key made `signature` over `data` in NAMESPACE."""
    if not signature.strip():
        raise AcceptanceRejected("the statement is not signed (no signature given)")
    if len(signature) > MAX_SIGNATURE_BYTES:
        raise AcceptanceRejected(f"the signature is larger than {MAX_SIGNATURE_BYTES} bytes")
    key = _signer_of(signature)
    matching = [s for s in signers if s.key.blob == key.blob]
    if not matching:
        raise AcceptanceRejected(
            f"signed by key {fingerprint(key.blob)}, which is not in reversibility.client_signers"
        )
    allowed = [s for s in matching if s.allows(NAMESPACE)]
    if not allowed:
        raise AcceptanceRejected(
            f"key {fingerprint(key.blob)} ({matching[0].principal}) may not sign in namespace "
            f"{NAMESPACE!r} (its allowed_signers line restricts namespaces)"
        )
    signer = allowed[0]
    try:
        sshsig.verify(data, signature, signer.key.line(), NAMESPACE)
    except (BundleCorrupt, KeyFormatError) as exc:
        raise AcceptanceRejected(f"bad signature by {signer.principal}: {exc}") from exc
    return signer


def verify_statement(
    text: str | bytes,
    signature: str,
    allowed_signers: Sequence[AllowedSigner],
    expected_bundle: str,
    expected_sums_sha256: str,
    *,
    expected_contract: str | None = None,
    today: date | None = None,
) -> VerifiedAcceptance:
    """Check a signed statement: signature, signer, namespace, then what it says.

    The signature is checked first, over the bytes as given (a `str` is
    taken as UTF-8), and nothing of an unsigned or badly signed text is
    read. Then the statement must be well formed, name `expected_bundle`
    and `expected_sums_sha256` (and `expected_contract` when given), and be
    dated no later than tomorrow (`today`, for tests). AcceptanceRejected
    says which check failed.
    """
    if not allowed_signers:
        raise AcceptanceRejected(
            "no client signer to check the acceptance against: add reversibility.client_signers"
        )
    data = text.encode("utf-8") if isinstance(text, str) else text
    if not data.strip():
        raise AcceptanceRejected("the acceptance statement is empty")
    signer = _check_signature(data, signature, allowed_signers)
    statement = parse_statement(data)
    if expected_contract is not None and statement.contract != expected_contract:
        raise AcceptanceRejected(
            f"the statement is for contract {statement.contract!r}, not {expected_contract!r}"
        )
    if statement.bundle != expected_bundle:
        raise AcceptanceRejected(
            f"the statement accepts bundle {statement.bundle!r}, not the delivered "
            f"{expected_bundle!r}"
        )
    if statement.sums_sha256 != expected_sums_sha256.lower():
        raise AcceptanceRejected(
            f"the statement's {SUMS_NAME} hash {statement.sums_sha256[:16]}... is not the "
            f"delivered bundle's {expected_sums_sha256[:16]}... (another copy of the bundle?)"
        )
    latest = (today or date.today()) + timedelta(days=1)
    if statement.signed_on > latest:
        raise AcceptanceRejected(f"the statement is dated {statement.signed_on}, in the future")
    return VerifiedAcceptance(
        statement=statement,
        principal=signer.principal,
        signer_fingerprint=signer.fingerprint,
        statement_sha256=hashlib.sha256(data).hexdigest(),
        statement_text=data.decode("utf-8"),
        signature=signature.strip() + "\n",
    )


# -- what the statement names ---------------------------------------------------------------


def sums_sha256(files: dict[str, str]) -> str:
    """SHA-256 of the `SHA256SUMS` the writer rendered from these file hashes (same bytes)."""
    return hashlib.sha256(render_sums(files)).hexdigest()


def bundle_sums_sha256(sealed: SealedBundle, delivery: DeliveryRecord | None = None) -> str:
    """The SHA-256 of the delivered bundle's SHA256SUMS, from the sealed hashes.

    For a folder delivery, the delivered file must agree with them:
    HandoverError otherwise (the delivery folder no longer holds the bundle
    that was sealed). See the module's docstring for S3.
    """
    digest = sums_sha256(sealed.files)
    if delivery is not None and delivery.kind == "local":
        path = Path(delivery.location) / SUMS_NAME
        try:
            delivered = hashlib.sha256(path.read_bytes()).hexdigest()
        except OSError as exc:
            raise HandoverError(
                f"{path}: cannot read the delivered {SUMS_NAME}: {exc.strerror}"
            ) from exc
        if delivered != digest:
            raise HandoverError(
                f"{path}: the delivered {SUMS_NAME} is not the one sealed (bundle replaced?)"
            )
    return digest


def statement_for(
    playbook: Playbook,
    bundle: str,
    sums_digest: str,
    *,
    decision: Decision,
    signatory: str,
    reservations: str = "",
    early_erasure: bool = False,
    signed_on: date | None = None,
) -> AcceptanceStatement:
    """The statement of `playbook`'s client about `bundle`; UsageError on incoherent choices."""
    parties = playbook.contract.parties
    try:
        return AcceptanceStatement(
            contract=playbook.contract_id,
            contract_title=playbook.contract.title,
            provider=parties.provider.legal_name,
            client=parties.client.legal_name,
            bundle=bundle,
            sums_sha256=sums_digest,
            decision=decision,
            early_erasure=early_erasure,
            signatory=signatory,
            signed_on=signed_on or date.today(),
            reservations=reservations,
            language=playbook.contract.language,
        )
    except ValidationError as exc:
        raise UsageError(f"acceptance statement: {_problems(exc)}") from exc


def playbook_signers(playbook: Playbook, base: Path | None = None) -> list[AllowedSigner]:
    """The client signers the playbook names (files read under `base`, the working directory).

    AcceptanceRejected when it names none: without them no acceptance can be
    verified, so the exit's one-way doors stay closed.
    """
    entries = playbook.reversibility.client_signers
    if not entries:
        raise AcceptanceRejected(
            f"{playbook.contract_id}: the playbook names no client signer, so the client's "
            "acceptance cannot be verified and the one-way doors stay closed: add "
            "reversibility.client_signers (the client's SSH public key, allowed_signers style)"
        )
    return load_signers(entries, base or Path.cwd(), "reversibility.client_signers")


def pair_sha256(statement: bytes, signature: str) -> str:
    """One hash for a (statement, signature) pair: which answers were already seen."""
    digest = hashlib.sha256(statement)
    digest.update(b"\0")
    digest.update(signature.strip().encode("utf-8", "replace"))
    return digest.hexdigest()
