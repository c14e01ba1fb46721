/**
 * The form: POST /api/entries with an Idempotency-Key, field errors next to their field, and
 * what was typed kept whenever the entry was not accepted. The limits are the API's own
 * (ENTRY_LIMITS), set here rather than written into index.html a second time.
 */
import { codePointLength, ENTRY_LIMITS, normaliseText } from '@inflow/shared/entry-rules';
import { errorOf, readJson, stringField } from './api-data.ts';
import { element, instanceTag } from './dom.ts';
import { STALE_AFTER_MS } from './entry-model.ts';
import type { EntryList } from './entry-list.ts';
import type { Reconciler } from './reconciler.ts';

type Field = 'author' | 'message';
const FIELDS: readonly Field[] = ['author', 'message'];

function randomKey(): string {
  // crypto.randomUUID needs a secure context; getRandomValues works on plain http too.
  const bytes = crypto.getRandomValues(new Uint8Array(16));
  return `page-${Array.from(bytes, (byte) => byte.toString(16).padStart(2, '0')).join('')}`;
}

export function setUpEntryForm(entries: EntryList, reconciler: Reconciler): void {
  const form = element('entry-form', HTMLFormElement);
  const submitButton = element('submit-button', HTMLButtonElement);
  const formStatus = element('form-status', HTMLParagraphElement);
  const formError = element('form-error', HTMLDivElement);
  const messageCounter = element('message-counter', HTMLSpanElement);
  const inputs = { author: element('author', HTMLInputElement), message: element('message', HTMLTextAreaElement) };
  const errors = { author: element('author-error', HTMLParagraphElement), message: element('message-error', HTMLParagraphElement) };

  let submitting = false;
  /** The key of the submission being tried: a retry of the same text reuses it (same entry). */
  let attempt: { key: string; text: string } | undefined;

  const clearErrors = (): void => {
    for (const name of FIELDS) {
      errors[name].hidden = true;
      errors[name].textContent = '';
      inputs[name].removeAttribute('aria-invalid');
    }
    formError.hidden = true;
    formError.textContent = '';
  };

  const showFieldError = (field: Field, text: string): void => {
    errors[field].textContent = text;
    errors[field].hidden = false;
    inputs[field].setAttribute('aria-invalid', 'true');
    inputs[field].focus();
  };

  const showFormError = (text: string): void => {
    formError.textContent = text;
    formError.hidden = false;
  };

  const updateCounter = (): void => {
    messageCounter.textContent = `${String(codePointLength(inputs.message.value))} / ${String(ENTRY_LIMITS.messageMaxChars)}`;
  };

  /** What the answer to a POST means for the person who sent it. */
  const answered = async (response: Response, author: string, message: string): Promise<void> => {
    const body = await readJson(response);
    const id = stringField(body, 'id');
    if (response.status === 202 && id !== undefined) {
      const acceptedBy = stringField(body, 'acceptedBy') ?? null;
      entries.merge({ id, status: 'queued', author: normaliseText(author), message: normaliseText(message), acceptedBy }, 'snapshot', true);
      attempt = undefined;
      inputs.message.value = '';
      updateCounter();
      formStatus.replaceChildren('Accepted by ', instanceTag(acceptedBy ?? 'unknown'), '. Watch it reach the database below.');
      // If the stream says nothing, the next reconciliations ask about it.
      setTimeout(() => void reconciler.run(), STALE_AFTER_MS + 500);
      inputs.message.focus();
      return;
    }
    const error = errorOf(body);
    if (response.status === 400 && (error?.field === 'author' || error?.field === 'message')) {
      showFieldError(error.field, error.message ?? `${error.field} is not valid`);
      return;
    }
    if (response.status === 503 || response.status === 502 || response.status === 504) {
      showFormError(
        'The system could not accept your entry right now. Nothing was saved; what you typed is kept, so you can send it again in a moment.',
      );
      return;
    }
    showFormError(error?.message ?? `The server answered ${String(response.status)}.`);
  };

  const submit = async (): Promise<void> => {
    if (submitting) return;
    clearErrors();
    const author = inputs.author.value;
    const message = inputs.message.value;
    const text = JSON.stringify([author, message]);
    if (attempt?.text !== text) attempt = { key: randomKey(), text };

    submitting = true;
    submitButton.disabled = true;
    submitButton.textContent = 'Sending…';
    form.setAttribute('aria-busy', 'true');
    formStatus.textContent = '';
    try {
      let response: Response;
      try {
        response = await fetch('/api/entries', {
          method: 'POST',
          headers: { 'Content-Type': 'application/json', 'Idempotency-Key': attempt.key },
          body: JSON.stringify({ author, message }),
          cache: 'no-store',
        });
      } catch {
        showFormError('Could not reach the server. Nothing was lost: what you typed is still here, so you can send it again.');
        return;
      }
      await answered(response, author, message);
    } finally {
      submitting = false;
      submitButton.disabled = false;
      submitButton.textContent = 'Send entry';
      form.removeAttribute('aria-busy');
    }
  };

  inputs.author.maxLength = ENTRY_LIMITS.authorMaxChars;
  inputs.message.maxLength = ENTRY_LIMITS.messageMaxChars;
  element('message-max-chars', HTMLSpanElement).textContent = String(ENTRY_LIMITS.messageMaxChars);
  for (const name of FIELDS) {
    inputs[name].addEventListener('input', () => {
      if (!errors[name].hidden) {
        errors[name].hidden = true;
        inputs[name].removeAttribute('aria-invalid');
      }
    });
  }
  inputs.message.addEventListener('input', updateCounter);
  // Ctrl+Enter (or ⌘+Enter) sends from the message box.
  inputs.message.addEventListener('keydown', (event) => {
    if (event.key === 'Enter' && (event.ctrlKey || event.metaKey)) {
      event.preventDefault();
      form.requestSubmit();
    }
  });
  form.addEventListener('submit', (event) => {
    event.preventDefault();
    void submit();
  });
  updateCounter();
}
