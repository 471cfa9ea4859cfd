# handover inventory: the facts of one host, collected in one run.
#
# Usage: sh -s -- [CERT_PATH ...] < inventory.sh
#
# POSIX sh only (dash, busybox ash, bash): every tool is optional, and a fact
# that cannot be read prints an "unreadable" marker instead of failing the run.
# Output is line-based and parsed by handover.estate.inventory_parser:
#
#   ==handover:section NAME==           a new section
#   ==handover:unreadable NAME: WHY==   this fact could not be read, and why
#   ==handover:meta KEY VALUE==         how the section was produced (tool, unit)
#   ==handover:file PATH==              the lines that follow come from PATH
#   |...                                a line copied from a file
#   ==handover:end==                    the run completed (absent: truncated)
#
# Lines copied from files (crontabs are writable by their users, certificates
# by whoever owns them) are prefixed with "|", so no file content can forge a
# marker. From certificate files only the CERTIFICATE blocks are printed: a
# private key kept in the same file never leaves the host.

LC_ALL=C
export LC_ALL
PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin:$PATH
export PATH

have() { command -v "$1" >/dev/null 2>&1; }
section() { printf '==handover:section %s==\n' "$1"; }
unreadable() { printf '==handover:unreadable %s: %s==\n' "$1" "$2"; }
meta() { printf '==handover:meta %s %s==\n' "$1" "$2"; }
filemark() { printf '==handover:file %s==\n' "$1"; }
dump() { sed 's/^/|/' "$1"; }

# --- os_release -------------------------------------------------------------
section os_release
if [ -r /etc/os-release ]; then
    dump /etc/os-release
elif [ -r /usr/lib/os-release ]; then
    dump /usr/lib/os-release
else
    unreadable os_release "no readable /etc/os-release or /usr/lib/os-release"
fi

# --- system -----------------------------------------------------------------
section system
printf 'kernel=%s\n' "$(uname -r 2>/dev/null)"
printf 'arch=%s\n' "$(uname -m 2>/dev/null)"
host_name=$(hostname 2>/dev/null || uname -n 2>/dev/null || cat /etc/hostname 2>/dev/null)
printf 'hostname=%s\n' "$host_name"

# --- packages ---------------------------------------------------------------
section packages
# Each manager is tried in turn and kept only if it answers: busybox ships an
# `rpm` applet that cannot list anything, and some Debian hosts have rpm too.
packages_done=no
if have dpkg-query; then
    if out=$(dpkg-query -W -f='${db:Status-Abbrev}\t${Package}\t${Version}\n' 2>/dev/null) \
        && [ -n "$out" ]; then
        meta manager dpkg
        printf '%s\n' "$out"
        packages_done=yes
    fi
fi
if [ "$packages_done" = no ] && have rpm; then
    if out=$(rpm -qa --qf 'ii\t%{NAME}\t%{VERSION}-%{RELEASE}\n' 2>/dev/null) \
        && [ -n "$out" ]; then
        meta manager rpm
        printf '%s\n' "$out"
        packages_done=yes
    fi
fi
if [ "$packages_done" = no ] && [ -r /lib/apk/db/installed ]; then
    meta manager apk
    pkg_name=
    while IFS= read -r line; do
        case $line in
            P:*) pkg_name=${line#P:} ;;
            V:*) printf 'ii\t%s\t%s\n' "$pkg_name" "${line#V:}" ;;
        esac
    done < /lib/apk/db/installed
    packages_done=yes
fi
if [ "$packages_done" = no ]; then
    unreadable packages "no dpkg-query, rpm or apk database that answers"
fi

# --- services ---------------------------------------------------------------
section services
if have systemctl && [ -d /run/systemd/system ]; then
    meta tool systemd
    systemctl list-units --type=service --all --no-legend --no-pager --plain 2>/dev/null \
        || unreadable services "systemctl list-units failed"
elif have rc-status; then
    meta tool openrc
    rc-status -a 2>/dev/null || unreadable services "rc-status failed"
elif [ -d /etc/init.d ]; then
    # No service manager to ask: list the init scripts, and call one running
    # when a process of the same name (or name + "d") exists.
    meta tool initd
    running=" $(cat /proc/[0-9]*/comm 2>/dev/null | sort -u | tr '\n' ' ') "
    for script in /etc/init.d/*; do
        [ -f "$script" ] || continue
        name=${script##*/}
        case $name in
            README | skeleton | rc | rcS | rcK | functions | halt | reboot | *.dpkg-* | *.sh) continue ;;
        esac
        case $running in
            *" $name "* | *" ${name}d "*) state=running ;;
            *) state=unknown ;;
        esac
        printf '%s\t%s\n' "$name" "$state"
    done
else
    unreadable services "no systemd, OpenRC or /etc/init.d"
fi

# --- listening --------------------------------------------------------------
section listening
listening_done=no
if have ss; then
    if out=$(ss -lntup 2>/dev/null) && [ -n "$out" ]; then
        meta tool ss
        printf '%s\n' "$out"
        listening_done=yes
    fi
fi
if [ "$listening_done" = no ] && have netstat; then
    if out=$(netstat -lntup 2>/dev/null) && [ -n "$out" ]; then
        meta tool netstat
        printf '%s\n' "$out"
        listening_done=yes
    fi
fi
if [ "$listening_done" = no ]; then
    meta tool proc
    for table in tcp tcp6 udp udp6; do
        if [ -r "/proc/net/$table" ]; then
            filemark "/proc/net/$table"
            dump "/proc/net/$table"
            listening_done=yes
        fi
    done
    [ "$listening_done" = yes ] || unreadable listening "no ss, netstat or /proc/net/tcp"
fi

# --- disks ------------------------------------------------------------------
section disks
if out=$(df -P -B1 2>/dev/null) || [ -n "$out" ]; then
    meta unit 1
elif out=$(df -Pk 2>/dev/null) || [ -n "$out" ]; then
    meta unit 1024
fi
if [ -n "$out" ]; then
    printf '%s\n' "$out"
    if [ -r /proc/mounts ]; then
        filemark /proc/mounts
        dump /proc/mounts
    fi
else
    unreadable disks "df failed"
fi

# --- users ------------------------------------------------------------------
section users
if [ -r /etc/passwd ]; then
    dump /etc/passwd
else
    unreadable users "/etc/passwd: not readable"
fi

# --- cron -------------------------------------------------------------------
section cron
for cron_dir in /etc/cron.d /etc/crontabs /var/spool/cron/crontabs /var/spool/cron; do
    if [ -d "$cron_dir" ] && [ ! -r "$cron_dir" ]; then
        unreadable cron "$cron_dir: permission denied"
    fi
done
for cron_file in /etc/crontab /etc/cron.d/* /etc/crontabs/* /var/spool/cron/crontabs/* /var/spool/cron/*; do
    [ -f "$cron_file" ] || continue
    if [ -r "$cron_file" ]; then
        filemark "$cron_file"
        dump "$cron_file"
    else
        unreadable cron "$cron_file: permission denied"
    fi
done

# --- certificates -----------------------------------------------------------
cert_file() {
    if [ ! -r "$1" ]; then
        unreadable certificates "$1: permission denied"
        return
    fi
    size=$(wc -c < "$1" 2>/dev/null)
    if [ "${size:-0}" -gt 4194304 ]; then
        unreadable certificates "$1: larger than 4 MiB, not read"
        return
    fi
    if grep -q -e '-----BEGIN CERTIFICATE-----' "$1" 2>/dev/null; then
        filemark "$1"
        sed -n '/-----BEGIN CERTIFICATE-----/,/-----END CERTIFICATE-----/p' "$1" | sed 's/^/|/'
    elif grep -q -e '-----BEGIN' "$1" 2>/dev/null; then
        : # PEM without a certificate (a key, a CSR): nothing to print
    elif have base64; then
        filemark "$1"
        meta encoding der
        base64 < "$1" | sed 's/^/|/'
    elif have od; then
        filemark "$1"
        meta encoding hex
        od -An -v -tx1 < "$1" | sed 's/^/|/'
    else
        unreadable certificates "$1: binary (DER) and no base64 or od to print it"
    fi
}

section certificates
for cert_path in "$@"; do
    if [ -f "$cert_path" ]; then
        cert_file "$cert_path"
    elif [ -d "$cert_path" ]; then
        if [ ! -r "$cert_path" ] || [ ! -x "$cert_path" ]; then
            unreadable certificates "$cert_path: permission denied"
            continue
        fi
        find "$cert_path" \( -type f -o -type l \) \
            \( -name '*.pem' -o -name '*.crt' -o -name '*.cer' \) 2>/dev/null \
            | head -n 2000 \
            | while IFS= read -r found; do
                [ -f "$found" ] && cert_file "$found"
            done
    else
        unreadable certificates "$cert_path: not found"
    fi
done

printf '==handover:end==\n'
