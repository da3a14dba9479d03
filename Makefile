# One entry point for people and CI. `make test` runs everything; `make demo` shows the product.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
HOSTS ?= 3
FLEET ?= demo
COLL_LINK := .build/collections/ansible_collections/mlinfra/docker_ml
SANITY_DIR := .build/sanity/ansible_collections/mlinfra/docker_ml
export ANSIBLE_CONFIG := $(CURDIR)/ansible.cfg
export PATH := $(CURDIR)/$(BIN):$(PATH)

.PHONY: help venv collection unit sanity lint build ee fleet-test molecule test demo demo-down clean

help:
	@echo "make test   - unit tests, ansible-test sanity, ansible-lint, build, fleet + molecule tests"
	@echo "make demo   - local $(HOSTS)-host fleet + ansible-playbook playbooks/site.yml"

$(BIN)/.stamp: requirements-dev.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -r requirements-dev.txt
	touch $@

venv: $(BIN)/.stamp

$(COLL_LINK):
	mkdir -p $(dir $(COLL_LINK))
	ln -sfn $(CURDIR) $(COLL_LINK)

collection: $(COLL_LINK)

unit: venv collection
	$(BIN)/pytest -q tests/unit

# ansible-test installs its own pinned linters: give it a virtualenv of its own (.venv-sanity), and
# the collection at ansible_collections/<ns>/<name> (a copy of the tracked files).
SANITY_BIN := .venv-sanity/bin
$(SANITY_BIN)/.stamp: requirements-dev.txt
	$(PYTHON) -m venv .venv-sanity
	$(SANITY_BIN)/pip install -q --upgrade pip
	$(SANITY_BIN)/pip install -q "$$(grep '^ansible-core==' requirements-dev.txt)"
	touch $@

GET_PIP_CACHE := $(HOME)/.ansible/test/cache/get_pip_24_2.py
$(GET_PIP_CACHE):
	mkdir -p $(dir $@) && cp .ci/get_pip_offline.py $@

sanity: $(SANITY_BIN)/.stamp $(GET_PIP_CACHE)
	rm -rf $(SANITY_DIR) && mkdir -p $(SANITY_DIR)
	git ls-files -co --exclude-standard -z | xargs -0 cp --parents -t $(SANITY_DIR)
	cd $(SANITY_DIR) && git init -q && git add -A && \
	  PATH=$(CURDIR)/$(SANITY_BIN):$$PATH ansible-test sanity --python 3.11 --requirements

lint: venv collection
	$(BIN)/ansible-lint --offline

build: venv
	mkdir -p .build
	$(BIN)/ansible-galaxy collection build --force --output-path .build

# ansible-builder create (the EE's build context, from the tarball), then its introspection over the installed
# tarball must find what meta/execution-environment.yml promises. No image is built: the base cannot be pulled here.
EE_DIR := .build/ee
ee: build
	rm -rf $(EE_DIR) .build/ee-src .build/ee-collections && mkdir -p .build/ee-src
	cp "$$(ls -t .build/mlinfra-docker_ml-*.tar.gz | head -1)" .build/ee-src/mlinfra-docker_ml.tar.gz
	$(BIN)/ansible-builder create -f tests/ee/execution-environment.yml -c $(EE_DIR) --output-filename Containerfile
	test -f $(EE_DIR)/Containerfile -a -f $(EE_DIR)/_build/collections/mlinfra-docker_ml.tar.gz
	ANSIBLE_COLLECTIONS_PATH=.build/ee-collections $(BIN)/ansible-galaxy collection install --offline -p .build/ee-collections \
	  .build/ee-src/mlinfra-docker_ml.tar.gz >/dev/null
	$(BIN)/python $(EE_DIR)/_build/scripts/introspect.py introspect .build/ee-collections | tee .build/ee-introspect.yml
	for req in nvidia-ml-py jmespath openssh-client; do \
	  grep -q "$$req.*from collection mlinfra.docker_ml" .build/ee-introspect.yml || { echo "EE lacks $$req"; exit 1; }; done

fleet-test: venv collection
	$(BIN)/pytest -q -rs -m fleet tests/integration

molecule: venv collection
	@if ls molecule/*/molecule.yml >/dev/null 2>&1; then $(BIN)/molecule test --all; else echo "no molecule scenario yet"; fi

test: unit lint build ee sanity fleet-test molecule

# The demo fleet has no real images registry: it runs the test fixture images and a demo model.
DEMO_VARS := {"ml_stack_tf_serving_model_name": "half_plus_two", "ml_stack_tf_serving_models_path": "/srv/models"}
demo: venv collection
	$(BIN)/python -m tests.fleet up --name $(FLEET) --hosts $(HOSTS) --fixtures
	$(BIN)/ansible ml_serving -i .fleet/$(FLEET)/inventory.yml -m ansible.builtin.shell \
	  -a 'mkdir -p /srv/models/half_plus_two/1 && echo demo > /srv/models/half_plus_two/1/saved_model.pb' >/dev/null
	$(BIN)/ansible-playbook -i .fleet/$(FLEET)/inventory.yml playbooks/site.yml -e '$(DEMO_VARS)'
	@echo "== reconverge: every host must report changed=0"
	@mkdir -p .build && set -o pipefail && \
	  $(BIN)/ansible-playbook -i .fleet/$(FLEET)/inventory.yml playbooks/site.yml -e '$(DEMO_VARS)' | tee .build/demo-reconverge.log
	@! grep -E 'changed=[1-9]' .build/demo-reconverge.log || { echo "the second run changed something"; exit 1; }
	$(BIN)/python -m tests.fleet.smoke --name $(FLEET)


demo-down: venv
	$(BIN)/python -m tests.fleet down --name $(FLEET)

clean:
	rm -rf .build
