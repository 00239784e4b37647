/**
 * Size limits for the sources of the caching package and of the app: no file over 400 lines, no
 * function over 60.
 *
 *   npx tsx scripts/check-size.ts [dir...]   default: packages/graphql-lease-cache/src and src
 *
 * Every .ts file under the directories (not .d.ts, and nothing under src/generated/, which
 * codegen writes) is parsed with the TypeScript compiler API.
 * A file's length is its number of lines; a function's is the number of lines from the line its
 * declaration starts on (after any leading comment) to the line of its closing brace or last
 * token, both included. Functions are function declarations, methods, constructors, get and set
 * accessors, arrow functions and function expressions, nested ones each counted on its own;
 * overload signatures (no body) are skipped. Prints one line per violation (file:line, what,
 * length) and exits 1 when there is any.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import ts from 'typescript';

const MAX_FILE_LINES = 400;
const MAX_FUNCTION_LINES = 60;
const DEFAULT_DIRS = ['packages/graphql-lease-cache/src', 'src'];
/** Written by codegen (`npm run codegen`), not by hand: its size is the schema's. */
const EXCLUDED_DIRS = ['src/generated'];

const root = join(dirname(fileURLToPath(import.meta.url)), '..');

interface Violation {
  file: string;
  line: number;
  what: string;
  lines: number;
  limit: number;
}

function sourceFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true })
    .flatMap((entry) => {
      const path = join(dir, entry.name);
      if (entry.isDirectory()) return EXCLUDED_DIRS.includes(relative(root, path)) ? [] : sourceFiles(path);
      return entry.isFile() && entry.name.endsWith('.ts') && !entry.name.endsWith('.d.ts') ? [path] : [];
    })
    .sort();
}

type FunctionNode =
  | ts.FunctionDeclaration
  | ts.MethodDeclaration
  | ts.ConstructorDeclaration
  | ts.GetAccessorDeclaration
  | ts.SetAccessorDeclaration
  | ts.ArrowFunction
  | ts.FunctionExpression;

function isFunctionWithBody(node: ts.Node): node is FunctionNode {
  if (ts.isArrowFunction(node)) return true;
  return (
    (ts.isFunctionDeclaration(node) ||
      ts.isMethodDeclaration(node) ||
      ts.isConstructorDeclaration(node) ||
      ts.isGetAccessorDeclaration(node) ||
      ts.isSetAccessorDeclaration(node) ||
      ts.isFunctionExpression(node)) &&
    node.body !== undefined
  );
}

function nameText(name: ts.PropertyName | ts.BindingName | undefined, sourceFile: ts.SourceFile): string | undefined {
  if (name === undefined) return undefined;
  if (ts.isIdentifier(name) || ts.isPrivateIdentifier(name) || ts.isStringLiteral(name) || ts.isNumericLiteral(name)) return name.text;
  return name.getText(sourceFile);
}

/** The name of the class, object literal or variable a method or function belongs to, if any. */
function ownerName(node: ts.Node, sourceFile: ts.SourceFile): string | undefined {
  const parent = node.parent;
  if (ts.isClassLike(parent)) return parent.name?.text ?? '(anonymous class)';
  if (ts.isObjectLiteralExpression(parent)) {
    const holder = parent.parent;
    if (ts.isVariableDeclaration(holder) || ts.isPropertyAssignment(holder)) return nameText(holder.name, sourceFile);
  }
  return undefined;
}

/** A readable name: `function f`, `method Class.m`, `arrow fn` (the variable or property it is assigned to), ... */
function describe(node: FunctionNode, sourceFile: ts.SourceFile): string {
  const qualified = (name: string | undefined): string => {
    const owner = ownerName(node, sourceFile);
    return owner === undefined ? (name ?? '(anonymous)') : `${owner}.${name ?? '(anonymous)'}`;
  };
  if (ts.isFunctionDeclaration(node)) return `function ${node.name?.text ?? '(default export)'}`;
  if (ts.isMethodDeclaration(node)) return `method ${qualified(nameText(node.name, sourceFile))}`;
  if (ts.isConstructorDeclaration(node)) return `constructor ${ownerName(node, sourceFile) ?? ''}`.trimEnd();
  if (ts.isGetAccessorDeclaration(node)) return `getter ${qualified(nameText(node.name, sourceFile))}`;
  if (ts.isSetAccessorDeclaration(node)) return `setter ${qualified(nameText(node.name, sourceFile))}`;

  const kind = ts.isArrowFunction(node) ? 'arrow function' : 'function expression';
  if (ts.isFunctionExpression(node) && node.name) return `${kind} ${node.name.text}`;
  const parent = node.parent;
  if (ts.isVariableDeclaration(parent) || ts.isPropertyDeclaration(parent)) return `${kind} ${nameText(parent.name, sourceFile)}`;
  if (ts.isPropertyAssignment(parent)) {
    const owner = ts.isObjectLiteralExpression(parent.parent) ? ownerName(parent, sourceFile) : undefined;
    const name = nameText(parent.name, sourceFile);
    return `${kind} ${owner === undefined ? name : `${owner}.${name}`}`;
  }
  if (ts.isCallExpression(parent) || ts.isNewExpression(parent)) {
    const callee = parent.expression.getText(sourceFile).replace(/\s+/g, '');
    return `${kind} passed to ${callee.length > 60 ? `${callee.slice(0, 57)}...` : callee}(...)`;
  }
  return `${kind} (anonymous)`;
}

function checkFile(path: string): Violation[] {
  const file = relative(root, path);
  const text = readFileSync(path, 'utf8');
  const sourceFile = ts.createSourceFile(path, text, ts.ScriptTarget.Latest, true, ts.ScriptKind.TS);
  const lineOf = (position: number): number => sourceFile.getLineAndCharacterOfPosition(position).line + 1;
  const violations: Violation[] = [];

  const fileLines = text.endsWith('\n') ? lineOf(text.length) - 1 : lineOf(text.length);
  if (fileLines > MAX_FILE_LINES) violations.push({ file, line: 1, what: 'file', lines: fileLines, limit: MAX_FILE_LINES });

  const visit = (node: ts.Node): void => {
    if (isFunctionWithBody(node)) {
      const start = lineOf(node.getStart(sourceFile));
      const lines = lineOf(node.getEnd()) - start + 1;
      if (lines > MAX_FUNCTION_LINES) {
        violations.push({ file, line: start, what: describe(node, sourceFile), lines, limit: MAX_FUNCTION_LINES });
      }
    }
    ts.forEachChild(node, visit);
  };
  visit(sourceFile);
  return violations;
}

const dirs = process.argv.slice(2).length > 0 ? process.argv.slice(2) : DEFAULT_DIRS;
const files = dirs.flatMap((dir) => sourceFiles(join(root, dir)));
const violations = files.flatMap(checkFile);

for (const v of violations) {
  console.error(`${v.file}:${v.line}  ${v.what}: ${v.lines} lines (limit ${v.limit})`);
}
if (violations.length > 0) {
  console.error(
    `\ncheck-size: ${violations.length} violation(s) in ${files.length} files under ${dirs.join(', ')} ` +
      `(files at most ${MAX_FILE_LINES} lines, functions at most ${MAX_FUNCTION_LINES}).`,
  );
  process.exit(1);
}
console.log(`check-size: ${files.length} files under ${dirs.join(', ')} within the limits.`);
