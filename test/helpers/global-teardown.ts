export { default } from '../../src/testing/jest-global-teardown';
