import type { ContainerClient } from '@azure/storage-blob';

/**
 * A blob name that stays inside its container once it is part of a URL: not empty, at most 1,024
 * characters (Azure's limit), and no `.`, `..` or empty path segment (URL resolution would walk
 * `..` out of the container), no backslash (some tools read it as a separator), no control
 * characters. Returns why not, or undefined when the name is fine.
 */
export function blobNameProblem(name: string): string | undefined {
  if (name.length === 0) return 'the blob name is empty';
  if (name.length > 1024) return 'the blob name is longer than 1,024 characters';
  // eslint-disable-next-line no-control-regex
  if (/[\\\u0000-\u001f\u007f]/.test(name))
    return 'the blob name holds a backslash or control character';
  if (name.split('/').some((s) => s === '' || s === '.' || s === '..')) {
    return 'the blob name has an empty, "." or ".." path segment';
  }
  return undefined;
}

/** The container's URL without query or trailing slash: `https://acct.blob.core.windows.net/c`. */
export function containerBase(container: ContainerClient): URL {
  const url = new URL(container.url);
  url.search = '';
  url.hash = '';
  url.pathname = url.pathname.replace(/\/+$/, '');
  return url;
}

/**
 * The blob name a storage_url points at inside the container, or why it is not in it. A
 * storage_url is an http(s) URL of a blob in this container (any query, a SAS of the crawler's,
 * is ignored) or a blob name relative to the container.
 */
export function blobNameIn(
  container: ContainerClient,
  storageUrl: string,
): { name: string } | { problem: string } {
  let name = storageUrl;
  if (/^[a-z][a-z0-9+.-]*:/i.test(storageUrl)) {
    let url: URL;
    try {
      url = new URL(storageUrl);
    } catch {
      return { problem: 'not a valid URL' };
    }
    const base = containerBase(container);
    // The URL parser has already resolved `..` and `%2e%2e` segments, so a prefix check holds.
    if (url.origin !== base.origin || !url.pathname.startsWith(`${base.pathname}/`)) {
      return { problem: 'not in the storage container' };
    }
    try {
      name = decodeURIComponent(url.pathname.slice(base.pathname.length + 1));
    } catch {
      return { problem: 'the blob name is not valid percent-encoding' };
    }
  }
  const problem = blobNameProblem(name);
  return problem ? { problem } : { name };
}
