#!/usr/bin/env bash
# Install the Debian packages the book and its tests need: the TeX set of the PDF book (notes/toolchain.md:
# XeLaTeX + FreeFont, ~400 MB, ~80 s), poppler-utils (pdfinfo/pdfimages/pdftoppm, used by the tests that look
# inside the PDF) and chromium (the headless browser of the HTML book test, driven by Playwright).
# Does nothing when everything is present; needs root (or password-less sudo) otherwise.
set -euo pipefail
pkgs=(texlive-latex-recommended texlive-fonts-recommended texlive-latex-extra latexmk tex-gyre
      texlive-xetex fonts-freefont-otf xindy poppler-utils chromium)
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
  echo "Debian packages present (xelatex: $(command -v xelatex), chromium: $(command -v chromium))"
  exit 0
fi
echo "Installing Debian packages for the book and its tests: ${missing[*]}"
if [ "$(id -u)" -eq 0 ]; then SUDO=""; elif sudo -n true 2>/dev/null; then SUDO="sudo -n"; else
  echo "error: these Debian packages are missing and I cannot install them without root:" >&2
  echo "  sudo apt-get install -y --no-install-recommends ${missing[*]}" >&2
  echo "(or build without the PDF: s2book build --no-pdf; the browser test needs chromium)" >&2
  exit 1
fi
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
