PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
export PATH := $(CURDIR)/$(BIN):$(PATH)

.PHONY: run test test-fast bench eval eval-photo align-eval load install install-dev browser fonts clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(VENV)/.installed: requirements.txt requirements-nodeps.txt | $(BIN)/python
	$(BIN)/pip install --upgrade pip
	$(BIN)/pip install -r requirements.txt
	$(BIN)/pip install --no-deps -r requirements-nodeps.txt
	touch $@

$(VENV)/.installed-dev: requirements-dev.txt $(VENV)/.installed
	$(BIN)/pip install -r requirements-dev.txt
	touch $@

install: $(VENV)/.installed
install-dev: $(VENV)/.installed-dev

# Fonts for burned-in captions (engine/burnin.py; ~20 MB installed): DejaVu for Latin, Greek,
# Cyrillic and Hebrew, Noto Sans UI for Arabic, Thai and the Indic scripts, WenQuanYi Micro Hei
# for Chinese, Japanese and Korean; FriBiDi, which Pillow's text shaping loads at run time.
CAPTION_FONTS := /usr/share/fonts/truetype/dejavu/DejaVuSansCondensed-Bold.ttf \
  /usr/share/fonts/truetype/noto/NotoSansArabicUI-Bold.ttf /usr/share/fonts/truetype/wqy/wqy-microhei.ttc
fonts:
	@(ls $(CAPTION_FONTS) && ldconfig -p | grep -q libfribidi.so.0) >/dev/null 2>&1 || (apt-get update && \
	  DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends fonts-dejavu-core \
	  fonts-dejavu-extra fonts-noto-ui-core fonts-wqy-microhei libfribidi0)

# Debian's chromium for the browser tests (Playwright drives it; it never downloads a browser).
browser:
	@command -v chromium >/dev/null || (apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends chromium)

run: install fonts
	mkdir -p var
	$(BIN)/python manage.py migrate --noinput
	$(BIN)/python manage.py demo_user
	$(BIN)/honcho start

# Every test: web, engine, integration through the real engine, scale-out and browser.
test: install-dev browser fonts
	$(BIN)/python manage.py check
	$(BIN)/python -m pytest

# The quick tier while working: everything not marked slow.
test-fast: install-dev
	$(BIN)/python -m pytest -m "not slow"

bench: install
	$(BIN)/python -m engine bench

# Lip-sync figures on the team's real clip (STUDIO_SHARED_MEDIA, default ../shared/media):
# self-reenactment, and driven by recorded voices and espeak voices in five languages.
SHARED_MEDIA ?= $(or $(STUDIO_SHARED_MEDIA),$(abspath $(CURDIR)/../shared/media))
eval: install
	$(BIN)/python -m engine eval --video $(SHARED_MEDIA)/obama_address_30s.mov --split 20 \
	  --drive $(SHARED_MEDIA)/jfk_inaugural_11s.wav --drive $(SHARED_MEDIA)/speech_en.wav \
	  --drive $(SHARED_MEDIA)/speech_de.wav --drive $(SHARED_MEDIA)/speech_es.wav \
	  --drive $(SHARED_MEDIA)/speech_ja.wav \
	  --drive-text "espeak:en-us:Good evening, everyone. Tonight I want to talk about the work ahead of us, and about the people who will do it." \
	  --drive-text "espeak:fr:Bonsoir à tous. Ce soir, je voudrais vous parler du travail qui nous attend, et des gens qui vont le faire." \
	  --drive-text "espeak:de:Guten Abend, liebe Freunde. Heute Abend möchte ich über die Arbeit sprechen, die vor uns liegt." \
	  --drive-text "espeak:es:Buenas noches a todos. Esta noche quiero hablar del trabajo que nos espera, y de la gente que lo hará." \
	  --drive-text "espeak:cmn:大家晚上好。今天晚上，我想谈谈我们面前的工作，还有将要完成这项工作的人们。" \
	  --footage-audio silence --footage-audio music \
	  -o var/eval/obama --report docs/eval.md
	$(BIN)/python -m engine eval-sheet var/eval/obama -o docs/eval_languages.jpg

# Talking photos: frame 0 of the real clip driven by its own sound (against the real frames),
# and two more portraits driven by recorded voices; writes docs/photo_eval.md.
eval-photo: install
	$(BIN)/python -m engine eval --photo --video $(SHARED_MEDIA)/obama_address_30s.mov \
	  --drive $(SHARED_MEDIA)/speech_en.wav --drive $(SHARED_MEDIA)/jfk_inaugural_11s.wav \
	  -o var/eval/photo --report docs/photo_eval.md

# Transcript alignment on the recorded sentences with known word timings (speech_*.wav).
align-eval: install
	$(BIN)/python -m engine align-eval --media $(SHARED_MEDIA) --report docs/alignment-eval.md

# The status page at 100 polls/s under gunicorn while a render runs; writes docs/performance.md.
load: install
	env -u DATABASE_URL -u REDIS_URL -u AWS_STORAGE_BUCKET_NAME VAR_DIR=$(CURDIR)/var/load $(BIN)/python manage.py load

clean:
	rm -rf var/test var/test.sqlite3 .pytest_cache
