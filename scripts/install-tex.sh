#!/usr/bin/env bash
# Install the Debian TeX set the PDF book needs (notes/toolchain.md: XeLaTeX + FreeFont, ~400 MB, ~80 s),
# and poppler-utils (pdfimages/pdftoppm, used by the tests that look inside the PDF).
# Does nothing when everything is present; needs root (or password-less sudo) otherwise.
set -euo pipefail
pkgs=(texlive-latex-recommended texlive-fonts-recommended texlive-latex-extra latexmk tex-gyre
      texlive-xetex fonts-freefont-otf xindy poppler-utils)
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
  echo "TeX toolchain present (xelatex: $(command -v xelatex))"
  exit 0
fi
echo "Installing Debian packages for the PDF book: ${missing[*]}"
if [ "$(id -u)" -eq 0 ]; then SUDO=""; elif sudo -n true 2>/dev/null; then SUDO="sudo -n"; else
  echo "error: these Debian packages are missing and I cannot install them without root:" >&2
  echo "  sudo apt-get install -y --no-install-recommends ${missing[*]}" >&2
  echo "(or build without the PDF: s2book build --no-pdf)" >&2
  exit 1
fi
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
