"""Labels of the facts the flows record (bundle, deliveries, acceptance, revocations, erasure).

The exit report shows those records as fields and tables whose labels come
from their keys (`accepted_by` -> `Accepted by`); the labels are listed here
so the catalogue holds them and a French report says `Recette par`, not
English. A key not listed shows capitalised as it is (it is data, not prose).
"""

from __future__ import annotations

from handover.i18n import N_, Texts

LABELS = {
    "Accepted": N_("Accepted"),
    "Accepted by": N_("Accepted by"),
    "Comment": N_("Comment"),
    "At": N_("At"),
    "Early erasure": N_("Early erasure"),
    "Decision": N_("Decision"),
    "Reservations": N_("Reservations"),
    "Signer principal": N_("Signer principal"),
    "Signer fingerprint": N_("Signer fingerprint"),
    "Statement sha256": N_("Statement sha256"),
    "Statement": N_("Statement"),
    "Signature": N_("Signature"),
    "Corrected by": N_("Corrected by"),
    "Corrections": N_("Corrections"),
    "Revision": N_("Revision"),
    "Bundle name": N_("Bundle name"),
    "Bundle": N_("Bundle"),
    "Signed by": N_("Signed by"),
    "Number": N_("Number"),
    "File": N_("File"),
    "Size": N_("Size"),
    "Sha256": N_("Sha256"),
    "Files": N_("Files"),
    "Bytes": N_("Bytes"),
    "Location": N_("Location"),
    "Manifest sha256": N_("Manifest sha256"),
    "Provider key": N_("Provider key"),
    "Created": N_("Created"),
    "Volumes": N_("Volumes"),
    "Name": N_("Name"),
    "Certificate": N_("Certificate"),
    "Certificate sha256": N_("Certificate sha256"),
    "Records": N_("Records"),
    "Complete": N_("Complete"),
    "Remaining": N_("Remaining"),
    "Kept": N_("Kept"),
    "Kind": N_("Kind"),
    "Client copy": N_("Client copy"),
    "Links": N_("Links"),
    "Link expiry days": N_("Link expiry days"),
    "Path": N_("Path"),
    "Contract id": N_("Contract id"),
    "Host": N_("Host"),
    "Action": N_("Action"),
    "Marker": N_("Marker"),
    "Changed": N_("Changed"),
    "Unchanged": N_("Unchanged"),
    "Sha256 before": N_("Sha256 before"),
    "Sha256 after": N_("Sha256 after"),
    "File created": N_("File created"),
    "By": N_("By"),
    "Account": N_("Account"),
    "Keys left in file": N_("Keys left in file"),
    "Login refused": N_("Login refused"),
    "Description": N_("Description"),
    "Method": N_("Method"),
    "Status": N_("Status"),
    "Objects": N_("Objects"),
    "Error": N_("Error"),
    "Verified at": N_("Verified at"),
    "Ok": N_("Ok"),
    "Total bytes": N_("Total bytes"),
    "Sha256sums sha256": N_("Sha256sums sha256"),
}


def field_label(t: Texts, key: str) -> str:
    """`accepted_by` -> `Accepted by`, in the document's language when the catalogue has it."""
    label = key.replace("_", " ").capitalize()
    return t._(LABELS[label]) if label in LABELS else label
